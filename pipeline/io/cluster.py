"""A Dask client: to an existing scheduler by address, or to a LocalCluster on this machine.

The engines that run on Dask (scoring, the intent features) share it. Their workers need
leadscore installed (``pip install 'leadscore[dask]'``) and the input files at the same paths.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import ConfigError
from pipeline.runtime import quiet_loggers

DISTRIBUTED_LOGGERS = ("distributed", "distributed.nanny", "distributed.scheduler", "distributed.core",
                       "distributed.http.proxy", "distributed.worker")


def dask_client(scheduler: str | None, workers: int | None) -> Any:
    """A client to ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``), or to a new LocalCluster of
    ``workers`` processes (default 2) of one thread each; close it with :func:`close_client`."""
    from distributed import Client, LocalCluster

    quiet_loggers(*DISTRIBUTED_LOGGERS)
    if scheduler:
        try:
            return Client(scheduler, timeout="30s")
        except OSError as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}")
    cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster)


def close_client(client: Any, *, scheduler: str | None) -> None:
    """Close the client, and the LocalCluster too if it was made for it (an existing scheduler stays up)."""
    client.close()
    if not scheduler and client.cluster is not None:
        client.cluster.close()

