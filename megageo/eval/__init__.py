"""Model-independent evaluation: everything after a model has produced forecasts in metres.

metrics      the paper's eq. 13 RMSE and batch-mean ACC, WeatherBench 2's latitude-weighted RMSE and ACC
climatology  day-of-year x hour-of-day climatology of the training split (ACC reference, baseline)
baselines    persistence, climatology and the paper's batch-mean forecasts
horizon      useful-skill horizon: the last lead of the initial run with ACC >= 0.6
report       per-lead scores and skill horizons of models and baselines as JSON and markdown
plots        maps, skill by lead time, loss curves, throughput/memory against sequence length
netcdf       CF-1.8 forecast files
times        NCEP hours since 1800-01-01 <-> datetime64, day of year, hour of day
"""
