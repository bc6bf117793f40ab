"""One io_uring instance, set up and mapped from plain CPython (ctypes + mmap, no C code).

:class:`Ring` owns the ring fd and the three mappings (SQ ring, CQ ring and the SQE array);
it hands out SQE slots and submits them, and exposes the CQ ring as ``memoryview`` casts the
engine reads completions from directly (a method call per completion would cost more than the
read: see :mod:`fastsock.uring.server`).

Memory ordering: we publish the SQ tail and consume the CQ head with plain stores and loads.
x86-64 keeps stores in order and loads in order (TSO), which is what the kernel's
``smp_store_release``/``smp_load_acquire`` pair needs from us; :func:`check_cpu` refuses other
CPUs before anything is mapped.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import struct

from fastsock.uring import abi

# One SQE: opcode, flags, ioprio, fd, off, addr, len, op_flags, user_data, buf_index,
# personality, file_index, addr3, pad.
SQE = struct.Struct("<BBHiQQIIQHHiQQ")
assert SQE.size == abi.SQE_SIZE
_U32 = struct.Struct("<I")


class UringUnavailable(Exception):
    """io_uring cannot be used here; ``str()`` is a one-line reason for the user."""


def check_cpu(machine: str | None = None) -> None:
    machine = platform.machine() if machine is None else machine
    if machine not in ("x86_64", "AMD64"):
        raise UringUnavailable(
            f"--engine uring needs an x86-64 CPU (this is {machine or 'unknown'}): it writes "
            "the rings from Python without memory barriers"
        )


def _libc_syscall() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    # syscall() is variadic: without argtypes ctypes passes Python ints as C ints and a pointer
    # above 4 GiB is cut in half. Seven longs cover every io_uring call.
    syscall.argtypes = [ctypes.c_long] * 7
    syscall.restype = ctypes.c_long
    return syscall


def _setup_error(err: int) -> UringUnavailable:
    release = platform.release()
    if err == errno.ENOSYS:
        why = "the kernel has no io_uring, or a seccomp filter blocks it (ENOSYS)"
    elif err == errno.EPERM:
        why = "io_uring is disabled (sysctl kernel.io_uring_disabled, or a security policy: EPERM)"
    elif err == errno.EINVAL:
        why = (
            f"the kernel ({release}) lacks io_uring features it needs "
            f"(Linux >= {abi.MIN_KERNEL}: single-issuer, deferred task run)"
        )
    else:
        why = f"io_uring_setup failed: {os.strerror(err)}"
    return UringUnavailable(f"--engine uring is unavailable: {why}")


class Ring:
    """An io_uring with ``entries`` SQEs and ``cq_entries`` CQEs, single issuer."""

    def __init__(self, entries: int = 1024, cq_entries: int = 8192) -> None:
        check_cpu()
        self._syscall = _libc_syscall()
        params = abi.Params()
        params.flags = (
            abi.IORING_SETUP_CQSIZE
            | abi.IORING_SETUP_SUBMIT_ALL
            | abi.IORING_SETUP_COOP_TASKRUN
            | abi.IORING_SETUP_SINGLE_ISSUER
            | abi.IORING_SETUP_DEFER_TASKRUN
        )
        params.cq_entries = cq_entries
        fd = self._syscall(abi.SYS_IO_URING_SETUP, entries, ctypes.addressof(params), 0, 0, 0, 0)
        if fd < 0:
            raise _setup_error(ctypes.get_errno())
        self.fd = fd
        try:
            self._map(params)
        except BaseException:
            os.close(fd)
            raise
        self._enter_fd = fd
        self._enter_flags = abi.IORING_ENTER_GETEVENTS
        self.files = 0  # size of the registered file table (see register_files)
        self._register_ring_fd()

    def _map(self, p: abi.Params) -> None:
        need = abi.IORING_FEAT_SINGLE_MMAP | abi.IORING_FEAT_NODROP
        if p.features & need != need:
            raise UringUnavailable(
                "--engine uring is unavailable: the kernel's io_uring lacks single-mmap / "
                "no-drop completions (Linux >= 5.5)"
            )
        self.sq_entries = p.sq_entries
        self.cq_entries = p.cq_entries
        size = max(p.sq_off.array + p.sq_entries * 4, p.cq_off.cqes + p.cq_entries * abi.CQE_SIZE)
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        prot = mmap.PROT_READ | mmap.PROT_WRITE
        self._ring_map = mmap.mmap(self.fd, size, flags, prot, offset=abi.IORING_OFF_SQ_RING)
        self._sqe_map = mmap.mmap(
            self.fd, p.sq_entries * abi.SQE_SIZE, flags, prot, offset=abi.IORING_OFF_SQES
        )
        # Word views of the shared ring: the engine indexes these directly.
        self.u32 = memoryview(self._ring_map).cast("I")
        self.i32 = memoryview(self._ring_map).cast("i")
        self.u64 = memoryview(self._ring_map).cast("Q")
        self.sqe_map = self._sqe_map  # slice-assign here: a memoryview slice is a GC object
        self.sqes = memoryview(self._sqe_map)
        self.sqe_u32 = self.sqes.cast("I")  # patch one SQE word without a struct call
        self.sq_mask = self.u32[p.sq_off.ring_mask // 4]
        self.sq_head_i = p.sq_off.head // 4
        self.sq_tail_i = p.sq_off.tail // 4
        self.cq_mask = self.u32[p.cq_off.ring_mask // 4]
        self.cq_head_i = p.cq_off.head // 4
        self.cq_tail_i = p.cq_off.tail // 4
        self.cqes_off = p.cq_off.cqes  # bytes; 16-byte aligned
        # SQ index array: slot i holds SQE i, once, so an SQE's ring position is its index.
        array_i = p.sq_off.array // 4
        for i in range(p.sq_entries):
            self.u32[array_i + i] = i
        # Ours, published at submit. An unbounded int (the kernel's tail is its low 32 bits), so
        # a caller can keep "submit before the tail passes this" as one comparison.
        self.sq_tail = self.u32[self.sq_tail_i]
        self._submitted = self.sq_tail

    def _register_ring_fd(self) -> None:
        # A registered ring fd spares io_uring_enter an fdget/fdput per call (5.18). Optional:
        # without it we enter by the plain fd.
        update = abi.RsrcUpdate(offset=0xFFFFFFFF, data=self.fd)
        ret = self._syscall(
            abi.SYS_IO_URING_REGISTER,
            self.fd,
            abi.IORING_REGISTER_RING_FDS,
            ctypes.addressof(update),
            1,
            0,
            0,
        )
        if ret == 1:
            self._enter_fd = update.offset
            self._enter_flags |= abi.IORING_ENTER_REGISTERED_RING

    # -- registered files ---------------------------------------------------------------------
    def register_files(self, count: int) -> bool:
        """Register an empty (sparse) table of ``count`` files; False if the kernel refuses.

        An operation on a registered file (``IOSQE_FIXED_FILE``, ``sqe.fd`` = its index) spares
        the kernel an fget/fput of the socket per operation.
        """
        fds = (ctypes.c_int32 * count)(*([-1] * count))
        ret = self._syscall(
            abi.SYS_IO_URING_REGISTER,
            self.fd,
            abi.IORING_REGISTER_FILES,
            ctypes.addressof(fds),
            count,
            0,
            0,
        )
        if ret < 0:
            return False
        self.files = count
        self._file_fd = ctypes.c_int32(-1)
        self._file_update = abi.RsrcUpdate(data=ctypes.addressof(self._file_fd))
        return True

    def set_file(self, index: int, fd: int) -> bool:
        """Put ``fd`` in slot ``index`` of the registered table (-1 empties it); False on failure.

        A slot holds a reference to the file: empty it before closing the socket, or the close
        does not release it.
        """
        self._file_fd.value = fd
        self._file_update.offset = index
        ret = self._syscall(
            abi.SYS_IO_URING_REGISTER,
            self.fd,
            abi.IORING_REGISTER_FILES_UPDATE,
            ctypes.addressof(self._file_update),
            1,
            0,
            0,
        )
        return ret == 1

    # -- submission ---------------------------------------------------------------------------
    def sqe_offset(self) -> int:
        """Take the next SQE slot; returns its byte offset in :attr:`sqes`. Submits first when
        the SQ ring is full."""
        if (self.sq_tail - self.u32[self.sq_head_i]) & 0xFFFFFFFF >= self.sq_entries:
            self.enter(0)
        off = (self.sq_tail & self.sq_mask) * abi.SQE_SIZE
        self.sq_tail += 1
        return off

    def prep(
        self,
        opcode: int,
        fd: int,
        addr: int,
        length: int,
        user_data: int,
        *,
        off: int = 0,
        flags: int = 0,
        ioprio: int = 0,
        op_flags: int = 0,
        buf_group: int = 0,
    ) -> None:
        """Write one SQE (the slow path: accept, timers, cancels, plain sends)."""
        SQE.pack_into(
            self.sqes,
            self.sqe_offset(),
            opcode,
            flags,
            ioprio,
            fd,
            off,
            addr,
            length,
            op_flags,
            user_data,
            buf_group,
            0,
            0,
            0,
            0,
        )

    def sq_limit(self) -> int:
        """The highest :attr:`sq_tail` that leaves no SQE the kernel has not consumed yet
        overwritten: valid until the next :meth:`enter` (only an enter moves the kernel's
        head)."""
        used = (self.sq_tail - self.u32[self.sq_head_i]) & 0xFFFFFFFF
        return self.sq_tail - used + self.sq_entries

    def enter(self, wait: int) -> None:
        """Submit what was prepared and wait for ``wait`` completions (0: do not wait).

        EINTR (a signal) and EAGAIN/EBUSY (the kernel is short of resources or has
        completions to hand over first) return normally: the caller reaps and calls again.
        """
        tail = self.sq_tail
        self.u32[self.sq_tail_i] = tail & 0xFFFFFFFF  # publish (x86-64 keeps store order)
        to_submit = (tail - self._submitted) & 0xFFFFFFFF
        ret = self._syscall(
            abi.SYS_IO_URING_ENTER,
            self._enter_fd,
            to_submit,
            wait,
            self._enter_flags,
            0,
            0,
        )
        if ret >= 0:
            self._submitted = (self._submitted + ret) & 0xFFFFFFFF
            return
        err = ctypes.get_errno()
        if err in (errno.EINTR, errno.EAGAIN, errno.EBUSY):
            # What the kernel consumed before the error is in its SQ head.
            self._submitted = self.u32[self.sq_head_i]
            return
        raise OSError(err, f"io_uring_enter: {os.strerror(err)}")

    def close(self) -> None:
        for view in (self.u32, self.i32, self.u64, self.sqe_u32, self.sqes):
            view.release()
        self._ring_map.close()
        self._sqe_map.close()
        os.close(self.fd)
        self.fd = -1


def probe() -> None:
    """Raise :class:`UringUnavailable` unless a :class:`Ring` can be made here."""
    Ring(entries=8, cq_entries=16).close()
