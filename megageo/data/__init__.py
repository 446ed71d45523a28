"""The data pipeline: netCDF geopotential height -> HDF5 store -> training windows.

    ncep.py      read NCEP R1 / CF netCDF files, found by metadata (netcdf3.py: catch truncated classic files)
    synth.py     synthetic reanalysis from a shallow-water model, written as NCEP-layout hgt.YYYY.nc
    build.py     build_store: check, stream, compute train-split stats, rename atomically
    store.py     Store: the HDF5 layout and its reader
    dataset.py   WindowDataset: normalised (inputs, targets) windows with a leak-free chronological split
    anomalies.py each grid point's training-split mean, for windows normalised as anomalies
    commands.py  `megageo data synth | build | inspect`
"""
