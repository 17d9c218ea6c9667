"""Process settings of a batch command."""



def test_batch_runs_keep_freed_memory_where_glibc_allows() -> None:
    import sys

    from pipeline.runtime import keep_freed_memory

    assert keep_freed_memory() is (sys.platform.startswith("linux") and _is_glibc())


def _is_glibc() -> bool:
    import platform

    return platform.libc_ver()[0] == "glibc"
