import numpy as np
import pandas as pd

from pipeline.config import IcpParams
from pipeline.features.firmographic import EMPLOYEE_BANDS, band, canonical_industry, icp_fit, region


def test_industry_spellings_map_to_one_name() -> None:
    out = canonical_industry(pd.Series(["SaaS", " Sofware", "Computer Software", "technolgy", "Fin. Services",
                                        "widgets", None]))
    assert out.tolist()[:6] == ["software", "software", "software", "technology", "financial services", "widgets"]
    assert pd.isna(out.iloc[6])


def test_region_from_country_names_and_codes() -> None:
    out = region(pd.Series(["United States", "USA", "Deutschland", "gb", "Brazil", "Japan", "Atlantis", None]))
    assert out.tolist()[:6] == ["NA", "NA", "EU", "EU", "LATAM", "APAC"]
    assert out.iloc[6:].isna().all()


def test_size_bands() -> None:
    bands = band(np.array([1, 10, 11, 200, 201, 5001, np.nan, -3]), EMPLOYEE_BANDS)
    assert bands.iloc[:6].tolist() == ["1-10", "1-10", "11-50", "51-200", "201-1000", "5001+"]
    assert bands.iloc[6:].isna().all()  # missing, and below the first band


def test_icp_fit_counts_only_what_the_data_can_judge() -> None:
    context = pd.DataFrame({"industry": ["software", "retail", None], "employees": [100.0, 20.0, np.nan],
                            "region": ["NA", "APAC", "EU"]})
    result = icp_fit(context, IcpParams(industries=["software"], employees=(50, 5000), regions=["NA", "EU"]))
    assert result is not None
    fit, matched, missed = result
    assert fit.tolist() == [1.0, 0.0, 1.0]  # the third lead: only its region is known, and it matches
    assert matched.tolist() == ["industry;employees;region", "", "region"]
    assert missed.tolist() == ["", "industry;employees;region", ""]


def test_no_icp_declared_means_no_icp_feature() -> None:
    empty = IcpParams(industries=[], employees=None, regions=[])
    assert icp_fit(pd.DataFrame({"industry": ["x"]}), empty) is None
