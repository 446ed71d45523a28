"""The byte size a classic (netCDF3: CDF-1, CDF-2, CDF-5) file must have, read from its header.

Why: netCDF-C reads the missing tail of a truncated classic file as zeros without an error, so an interrupted
download of an old packed NCEP year would ingest silently as `add_offset` heights. The header says where every
variable's data starts and how long it is, which is enough to tell.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}  # NC_BYTE .. NC_UINT64
STREAMING = 0xFFFFFFFF


class _Header:
    def __init__(self, f: BinaryIO, version: int):
        self.f = f
        self.count_bytes = 8 if version == 5 else 4
        self.offset_bytes = 4 if version == 1 else 8

    def skip(self, size: int) -> bytes:
        data = self.f.read(size)
        if len(data) < size:
            raise EOFError("header ends early")
        return data

    def integer(self, size: int | None = None) -> int:
        return int.from_bytes(self.skip(size or self.count_bytes), "big")

    def skip_padded(self, size: int) -> None:
        self.skip(size + (-size % 4))

    def skip_name(self) -> None:
        self.skip_padded(self.integer())

    def skip_attributes(self) -> None:
        self.integer(4)  # NC_ATTRIBUTE tag, or ABSENT
        for _ in range(self.integer()):
            self.skip_name()
            nc_type = self.integer(4)
            self.skip_padded(self.integer() * TYPE_BYTES.get(nc_type, 1))


def required_bytes(path: Path) -> int | None:
    """Smallest size the file can have per its header; None if it is not a classic file (or is streamed).

    Raises EOFError when the header itself is cut short.
    """
    with open(path, "rb") as f:
        magic = f.read(4)
        if len(magic) < 4 or magic[:3] != b"CDF" or magic[3] not in (1, 2, 5):
            return None
        header = _Header(f, magic[3])
        records = header.integer()
        if records == STREAMING:
            return None
        header.integer(4)  # NC_DIMENSION tag
        lengths = []
        for _ in range(header.integer()):
            header.skip_name()
            lengths.append(header.integer())
        header.skip_attributes()
        header.integer(4)  # NC_VARIABLE tag
        variables = []
        for _ in range(header.integer()):
            header.skip_name()
            dims = [header.integer() for _ in range(header.integer())]
            header.skip_attributes()
            header.integer(4)  # nc_type
            size = header.integer()
            begin = header.integer(header.offset_bytes)
            variables.append((begin, size, bool(dims) and lengths[dims[0]] == 0))
    record_size = sum(size for _, size, is_record in variables if is_record)
    end = 0
    for begin, size, is_record in variables:
        if not is_record:
            end = max(end, begin + size)
        elif records:
            end = max(end, begin + size + (records - 1) * record_size)
    return end - 3  # vsize includes padding to 4 bytes, which the file's last variable may omit
