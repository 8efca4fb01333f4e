"""Memory checked before work: a job states what its largest arrays need, and is refused with
the estimate and the setting to change when that exceeds the memory the process may use (the
sources of docs/cli.md: MemAvailable, each memory cgroup's limit less its usage without the
reclaimable page cache, ulimit -v and -d less what is mapped). A source that cannot be read
imposes nothing; PROC is where /proc is read (tests stand a file tree in for it).
"""

import math
import os
import resource
from dataclasses import dataclass
from pathlib import Path

GB = 1e9
PROC = Path("/proc")
NO_CGROUP_LIMIT = 1 << 62  # cgroup v1 writes "no limit" as about 2^63 (v2 as "max")


@dataclass(frozen=True)
class CgroupVersion:
    fstype: str  # the file system type of its mounts in mountinfo
    limit: str  # the cgroup's limit ("max": none)
    usage: str  # and what it uses, page cache included
    reclaimable: str  # the key of memory.stat counting the page cache reclaimed first


CGROUP_VERSIONS = {
    "v2": CgroupVersion("cgroup2", "memory.max", "memory.current", "inactive_file"),
    "v1": CgroupVersion("cgroup", "memory.limit_in_bytes", "memory.usage_in_bytes",
                        "total_inactive_file"),
}
# resource limit -> (its name in messages, its shell command, the /proc/self/status field of
# what it counts)
RLIMITS = {"RLIMIT_AS": ("the address-space limit", "ulimit -v", "VmSize"),
           "RLIMIT_DATA": ("the data-segment limit", "ulimit -d", "VmData")}


class InsufficientMemory(MemoryError):
    """A job would need more memory than is available; the message says what to change."""


@dataclass(frozen=True)
class Available:
    """Bytes that a limit leaves to new allocations, and the limit, as a message names it."""

    bytes: int
    limit: str = None  # "the cgroup memory limit (...)"; None: the machine's MemAvailable

    def __str__(self):
        if self.limit is None:
            return f"the {gigabytes(self.bytes, math.floor)} GB available"
        return f"the {gigabytes(self.bytes, math.floor)} GB that {self.limit} leaves"


def memory_limits(proc=None):
    """What each limit on this process leaves: [Available], the sources that could be read;
    proc: where /proc is (default PROC)."""
    proc = PROC if proc is None else Path(proc)
    return [*_machine(proc), *_cgroups(proc), *_rlimits(proc)]


def available_memory(proc=None):
    """The smallest of memory_limits(): the Available that binds, or None if none is known."""
    return min(memory_limits(proc), key=lambda available: available.bytes, default=None)


def check_memory(job, parts):
    """Refuse `job` ("training") when its parts, [(what, bytes, advice)], need more than the
    memory available, naming the limit and the largest part's advice."""
    needed = sum(size for _, size, _ in parts)
    available = available_memory()
    if available is None or needed <= available.bytes:
        return
    what, size, advice = max(parts, key=lambda part: part[1])
    raise InsufficientMemory(
        f"{job} needs about {gigabytes(needed, math.ceil)} GB of memory ({what}: "
        f"{gigabytes(size)} GB), more than {available}: {advice}")


def gigabytes(size, rounding=round):
    """Bytes as GB to one decimal, rounded by `rounding`: a need shown rounded up and what is
    available rounded down never read "2.1 GB, more than the 2.1 GB available"."""
    return f"{rounding(round(size / GB * 10, 6)) / 10:,.1f}"


def _machine(proc):
    fields = _fields(proc / "meminfo")
    if "MemAvailable" in fields:
        return [Available(fields["MemAvailable"])]
    return []


def _rlimits(proc):
    status = _fields(proc / "self" / "status")
    found = []
    for name, (limit_name, command, held) in RLIMITS.items():
        soft, _ = resource.getrlimit(getattr(resource, name))
        if soft != resource.RLIM_INFINITY and held in status:
            found.append(Available(max(0, soft - status[held]),
                                   f"{limit_name} ({command}, {gigabytes(soft)} GB)"))
    return found


def _cgroups(proc):
    """For each memory cgroup hierarchy that holds this process: its cgroup and each parent up
    to the mount point, limit - usage of each that sets a limit."""
    found = []
    for version in CGROUP_VERSIONS.values():
        for directory in _cgroup_directories(proc, version):
            limit = _read_int(directory / version.limit)
            usage = _read_int(directory / version.usage)
            if limit is None or limit >= NO_CGROUP_LIMIT or usage is None:
                continue
            reclaimable = _fields(directory / "memory.stat").get(version.reclaimable, 0)
            found.append(Available(
                max(0, limit - max(0, usage - reclaimable)),
                f"the cgroup memory limit ({version.limit} of {directory}, {gigabytes(limit)} GB)"))
    return found


def _cgroup_directories(proc, version):
    """The directories of this process's memory cgroup and its parents (innermost first), from
    /proc/self/cgroup (v2: `0::/path`, v1: `N:...memory...:/path`) and the mount in
    /proc/self/mountinfo whose root contains that path."""
    try:
        cgroup_lines = (proc / "self" / "cgroup").read_text().splitlines()
        mount_lines = (proc / "self" / "mountinfo").read_text().splitlines()
    except OSError:
        return []
    v2 = version.fstype == "cgroup2"
    paths = [path for _, controllers, path in (line.split(":", 2) for line in cgroup_lines
                                                if line.count(":") >= 2)
             if (controllers == "" if v2 else "memory" in controllers.split(","))]
    for line in mount_lines:  # id parent major:minor root mount-point options... - type source
        fields, _, tail = line.partition(" - ")
        fields, tail = fields.split(), tail.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] != version.fstype:
            continue
        if not v2 and "memory" not in tail[2].split(","):
            continue
        root, mount = fields[3], Path(fields[4])
        for path in paths:
            relative = os.path.relpath(path, root)
            if relative == ".." or relative.startswith("../"):
                continue  # this process's cgroup lies outside what the mount shows
            directory = mount / relative
            return [directory, *[parent for parent in directory.parents
                                 if parent == mount or mount in parent.parents]]
    return []


def _fields(path):
    """A file of `Key: value [kB]` or `key value` lines (meminfo, status, memory.stat) as
    {key: bytes or count}. Missing or unreadable: {}."""
    values = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return values
    for line in lines:
        words = line.replace(":", " ").split()
        if len(words) >= 2 and words[1].isdigit():
            values[words[0]] = int(words[1]) * (1024 if words[2:] == ["kB"] else 1)
    return values


def _read_int(path):
    """An integer file (a cgroup's limit or usage); "max", missing or unreadable: None."""
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
