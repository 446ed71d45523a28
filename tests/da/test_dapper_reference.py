"""The baseline harness is DAPPER run correctly: its own Lorenz-96 setting (Sakov & Oke 2008: 40 variables, every
one observed with unit error every 0.05 time units) with the square-root EnKF, N = 24, inflation 1.013, random
rotations, reproduces the published analysis RMSE of about 0.18 (DAPPER's mods/Lorenz96/sakov2008.py, Table 1),
and its climatology about 3.6."""

from __future__ import annotations

import pytest

from megageo.da.ensemble_filters import import_dapper


@pytest.mark.slow
def test_dapper_enkf_reproduces_sakov2008_on_lorenz96() -> None:
    da = import_dapper("dapper.da_methods")
    HMM = import_dapper("dapper.mods.Lorenz96.sakov2008").HMM.copy()
    HMM.tseq.Ko = 2000  # 100 model time units (Sakov ran 1.5e4)
    # DAPPER draws from its own generator, which np.random.seed leaves clock-seeded: seeded that way this test drew
    # anything from 0.17 to 0.21. Seeds 1, 2 and 3 give 0.180, 0.176 and 0.173; seed 3000 diverges (3.61, the
    # climatology's error), the risk an inflation of 1.013 runs.
    import_dapper("dapper.tools.seeding").set_seed(1)
    truth, observations = HMM.simulate()
    scores = {}
    for name, method in {"enkf": da.EnKF("Sqrt", N=24, infl=1.013, rot=True), "climatology": da.Climatology()}.items():
        method.assimilate(HMM, truth, observations)
        method.stats.average_in_time()
        scores[name] = method.avrgs.err.rms.a.val
    assert 0.16 < scores["enkf"] < 0.20, scores
    assert 3.3 < scores["climatology"] < 3.9, scores
