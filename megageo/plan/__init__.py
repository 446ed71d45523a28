"""`megageo plan`: which layouts of a job fit its GPUs, with predicted memory, communication and step time.

Read in this order: `device.py` (what a GPU, its links and its software keep per value) → `kernels.py` (what each
sequence kernel keeps for backward) → `activations.py` (what one block of each mixer keeps, tensor by tensor) →
`job.py` (the model of a config: parameters, FLOPs, activations) → `memory.py` (one rank's peak memory under a
layout) → `cost.py` (communication and step time) → `layouts.py` (every valid layout, ranked) → `report.py` and
`commands.py` (the CLI). The package sits above `model/` and below `train/`: it reads configs and model structure,
never an engine.
"""
