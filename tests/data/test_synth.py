"""The synthetic reanalysis: deterministic per seed, NCEP layout, and real dynamics (persistence beatable but
not trivial, steady statistics, winds in geostrophic balance with the heights but not identical to it), ingested
by the same `data build` path as real files."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest

from megageo.cli import main
from megageo.data.store import Store
from megageo.data.synth import synthesize


def read_files(paths) -> dict[str, np.ndarray]:
    """Every variable of every file, keyed by file name and variable."""
    values = {}
    for path in paths:
        with netCDF4.Dataset(path) as ds:
            values.update({f"{path.name}:{name}": var[:].filled() for name, var in ds.variables.items()})
    return values


def short_run(out, seed):
    """Two frames, one in each year: 1979-12-31 18:00 and 1980-01-01 00:00."""
    return synthesize(out, days=0.5, seed=seed, start="1979-12-31T18:00", spinup_days=0.25, progress=False)


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    first, again, other = (short_run(tmp_path / name, seed) for name, seed in (("a", 7), ("b", 7), ("c", 8)))
    assert [p.name for p in first] == ["hgt.1979.nc", "uwnd.1979.nc", "vwnd.1979.nc",
                                       "hgt.1980.nc", "uwnd.1980.nc", "vwnd.1980.nc"]
    a, b, c = read_files(first), read_files(again), read_files(other)
    assert a.keys() == b.keys() == c.keys()
    assert all(np.array_equal(a[key], b[key]) for key in a)
    assert not np.array_equal(a["hgt.1979.nc:hgt"], c["hgt.1979.nc:hgt"])
    assert a["hgt.1979.nc:time"].tolist() == [1577826.0]
    assert a["hgt.1980.nc:time"].tolist() == [1577832.0]


def test_runs_are_the_seeds_runs_in_later_years_and_build_with_their_gap(tmp_path):
    """Two runs of the year-crossing short run: seeds 7 and 8, the second from 1981-12-31 18:00 (the first's files
    end in 1980), each byte for byte what a run of its seed alone writes."""
    from megageo.data.build import build_store

    paths = synthesize(tmp_path / "runs", days=0.5, seed=7, start="1979-12-31T18:00", spinup_days=0.25,
                       progress=False, runs=2)
    assert [p.name for p in paths[::3]] == ["hgt.1979.nc", "hgt.1980.nc", "hgt.1981.nc", "hgt.1982.nc"]
    runs, alone = read_files(paths), read_files(short_run(tmp_path / "eight", 8))
    assert np.array_equal(runs["hgt.1981.nc:hgt"], alone["hgt.1979.nc:hgt"])
    assert np.array_equal(runs["hgt.1982.nc:hgt"], alone["hgt.1980.nc:hgt"])
    assert runs["hgt.1981.nc:time"].tolist() == [1577826.0 + 731 * 24]  # two years on, 1980 a leap year
    store = Store(build_store(paths[::3], tmp_path / "s.h5", allow_gaps=True))
    assert store.gaps().tolist() == [1] and store.steps().tolist() == [6.0, 17538.0, 6.0]


def test_files_have_the_ncep_layout(tmp_path):
    paths = synthesize(tmp_path, days=0.25, seed=0, levels=(850, 500), spinup_days=0, progress=False)
    assert [path.name for path in paths] == ["hgt.1979.nc", "uwnd.1979.nc", "vwnd.1979.nc"]
    for path, units in zip(paths, ("m", "m/s", "m/s")):
        name = path.name.split(".")[0]
        with netCDF4.Dataset(path) as ds:
            assert ds[name].dimensions == ("time", "level", "lat", "lon")
            assert ds[name].dtype == np.float32 and ds[name].units == units
    with netCDF4.Dataset(paths[0]) as ds:
        assert ds["time"].units == "hours since 1800-01-01 00:00:0.0"
        assert ds["level"][:].tolist() == [850.0, 500.0]
        assert ds["lat"][[0, 1, -1]].tolist() == [90.0, 87.5, -90.0]
        assert ds["lon"][[0, 1, -1]].tolist() == [0.0, 2.5, 357.5]
        assert ds.data_model == "NETCDF4_CLASSIC"


@pytest.fixture(scope="module")
def twelve_days(tmp_path_factory):
    """12 days after 2 days of spin-up, through the CLI: synth, build, inspect."""
    root = tmp_path_factory.mktemp("synth")
    assert main(["data", "synth", "--out", str(root / "nc"), "--days", "12", "--seed", "0", "--spinup-days", "2"]) == 0
    assert main(["data", "build", "--src", str(root / "nc"), "--out", str(root / "z500.h5"),
                 "--vars", "hgt,uwnd,vwnd"]) == 0
    return Store(root / "z500.h5")


def test_cli_builds_a_store_from_synthetic_files(twelve_days, capsys):
    assert twelve_days.shape == (48, 3, 73, 144)
    assert twelve_days.channel_names() == ["hgt500", "uwnd500", "vwnd500"]
    assert twelve_days.steps().tolist() == [6.0] * 47
    assert str(twelve_days.dates(0)[0]) == "1979-01-01 00:00:00"
    assert main(["data", "inspect", str(twelve_days.path)]) == 0
    assert "step 6 h (regular)" in capsys.readouterr().out


def test_statistics_resemble_z500_and_stay_steady(twelve_days):
    z = twelve_days.read(0, 48)[:, 0].astype(np.float64)
    assert abs(z.mean() - 5509.7) < 30 and abs(z.std() / 343.3 - 1) < 0.1
    first, second = z[:24], z[24:]
    assert abs(first.mean() - second.mean()) < 20 and abs(first.std() / second.std() - 1) < 0.1


def test_persistence_is_beatable_but_not_trivial(twelve_days):
    """Real NCEP Z500: 24 h persistence RMSE 85.3 m, a quarter of the 343 m std."""
    z = twelve_days.read(0, 48)[:, 0].astype(np.float64)

    def persistence(lag: int) -> float:
        return float(np.sqrt(np.mean((z[lag:] - z[:-lag]) ** 2)))

    assert persistence(1) < 0.5 * persistence(4)
    assert 0.1 < persistence(4) / z.std() < 0.5


def test_winds_are_geostrophic_in_midlatitudes_but_not_only(twelve_days):
    """In 30-70° of either hemisphere the winds follow the heights' geostrophic wind, u_g = -(g/f) ∂Z/∂y and
    v_g = (g/f) ∂Z/∂x (correlation above 0.95), as real 500 hPa winds do, yet they are not a function of the
    heights alone: the correlation stays below 0.995 (at least 1 % of their variance is ageostrophic, the divergent
flow the heights do not show)."""
    frames = twelve_days.read(0, 48).astype(np.float64)
    z, u, v = frames[:, 0], frames[:, 1], frames[:, 2]
    lat, lon = np.deg2rad(twelve_days.lat), np.deg2rad(twelve_days.lon)
    radius, omega, g = 6.371e6, 7.292e-5, 9.80665
    f = 2 * omega * np.sin(lat)[None, :, None]
    u_g = -g / f * np.gradient(z, lat, axis=1) / radius
    v_g = g / f * np.gradient(z, lon, axis=2) / (radius * np.cos(lat)[None, :, None])
    band = (np.abs(twelve_days.lat) >= 30) & (np.abs(twelve_days.lat) <= 70)
    for wind, geostrophic in ((u, u_g), (v, v_g)):
        correlation = np.corrcoef(wind[:, band].ravel(), geostrophic[:, band].ravel())[0, 1]
        assert 0.95 < correlation < 0.995


def test_an_ensemble_steps_together_exactly_as_each_member_alone():
    """The twin's filters step 20 members in one batched call; each must follow the solver's own scheme."""
    import torch

    from megageo.data.synth import ShallowWaterModel, balanced_state

    model = ShallowWaterModel(seed=3)
    members = torch.stack([model.initial, balanced_state(model.solver, torch.Generator().manual_seed(4))])
    together = model.step_members(members)
    alone = torch.stack([model.step(member) for member in members])
    # complex128 states: one batched step differs from the solver's by 1.7e-16 of the largest coefficient, while
    # a step moves them by 1.7e-3 of it
    assert torch.allclose(together, alone, rtol=0, atol=1e-12 * alone.abs().max().item())
    assert not torch.allclose(together[0], together[1])
