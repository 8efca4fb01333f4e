"""Memory checked before work: a job states what its largest arrays need, and is refused with
the estimate and the setting to change when that exceeds the memory available, instead of being
killed by the kernel at the end of a long allocation."""

import os

GB = 1e9


class InsufficientMemory(MemoryError):
    """A job would need more memory than is available; the message says what to change."""


def available_memory():
    """Bytes of memory available to a new allocation (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(job, parts):
    """Refuse `job` (e.g. "training") when its parts need more than the memory available.

    parts: [(what, bytes, advice)], e.g. ("the model's weights, gradient and optimizer
    state", 3.2e9, "a text with fewer distinct characters"); they are summed.
    """
    needed = sum(size for _, size, _ in parts)
    available = available_memory()
    if available is None or needed <= available:
        return
    what, size, advice = max(parts, key=lambda part: part[1])
    raise InsufficientMemory(
        f"{job} needs about {needed / GB:,.1f} GB of memory ({what}: {size / GB:,.1f} GB), more "
        f"than the {available / GB:,.1f} GB available: {advice}")
