from setuptools import find_packages, setup

setup(
    name="megageo",
    version="0.1.0",
    description="Long-context sequence models for atmospheric forecasting at supercomputer scale",
    packages=find_packages(include=["megageo", "megageo.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.4",
        "deepspeed>=0.16",
        "megatron-core>=0.14",
        "flash-linear-attention>=0.4",
        "h5py",
        "netCDF4",
        "mpi4py",
        "matplotlib",
        "pyyaml",
        "tensorboard",
        "tqdm",
        "safetensors",
        "numpy",
    ],
    extras_require={"gpu": ["mamba-ssm", "causal-conv1d", "apex"]},
    entry_points={"console_scripts": ["megageo=megageo.cli:main"]},
)
