"""The io_uring kernel ABI we use, in one place: syscall numbers, structs, opcodes and flags.

Values are from the kernel's ``include/uapi/linux/io_uring.h`` (liburing mirrors them). Each
feature notes the kernel that added it; :mod:`fastsock.uring.ring` asks for all of them at
set-up, so a kernel older than the newest of them (6.1, for ``IORING_SETUP_DEFER_TASKRUN``)
fails there, with one line saying so.

Only x86-64: the ring is written from Python with plain stores, which x86-64 keeps in order
(TSO); other CPUs would need memory barriers that Python cannot express.
"""

from __future__ import annotations

import ctypes

# Kernel features the engine relies on, with the version that added each (the start-up error
# names the newest one).
FEATURES: dict[str, str] = {
    "IORING_OP_SEND / IORING_OP_RECV": "5.6",
    "IORING_FEAT_NODROP (no lost completions)": "5.5",
    "IOSQE_CQE_SKIP_SUCCESS": "5.17",
    "IORING_REGISTER_RING_FDS (registered ring fd)": "5.18",
    "multishot IORING_OP_ACCEPT": "5.19",
    "IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL": "5.19",
    "IORING_RECVSEND_POLL_FIRST": "5.19",
    "IORING_SETUP_SINGLE_ISSUER": "6.0",
    "IORING_ASYNC_CANCEL_FD_FIXED": "6.0",
    "IORING_SETUP_DEFER_TASKRUN": "6.1",
    # The shared receive pool (--uring-pool, the default data path; see fastsock.uring.pool).
    "IORING_REGISTER_PBUF_RING (provided-buffer ring)": "5.19",
    # Large mode (readiness): a multishot poll per connection (see fastsock.uring.connection).
    "multishot IORING_OP_POLL_ADD (IORING_POLL_ADD_MULTI)": "5.13",
}
MIN_KERNEL = "6.1"

# x86-64 syscall numbers (the same on every kernel: io_uring is in the generic table).
SYS_IO_URING_SETUP = 425
SYS_IO_URING_ENTER = 426
SYS_IO_URING_REGISTER = 427

# io_uring_setup flags.
IORING_SETUP_CQSIZE = 1 << 3
IORING_SETUP_SUBMIT_ALL = 1 << 7  # 5.18
IORING_SETUP_COOP_TASKRUN = 1 << 8  # 5.19
IORING_SETUP_SINGLE_ISSUER = 1 << 12  # 6.0
IORING_SETUP_DEFER_TASKRUN = 1 << 13  # 6.1

# io_uring_params.features bits.
IORING_FEAT_SINGLE_MMAP = 1 << 0  # 5.4
IORING_FEAT_NODROP = 1 << 1  # 5.5

# io_uring_enter flags.
IORING_ENTER_GETEVENTS = 1 << 0
IORING_ENTER_REGISTERED_RING = 1 << 4  # 5.18

# io_uring_register opcodes.
IORING_REGISTER_FILES = 2  # 5.1; entries of -1 leave a slot empty (sparse)
IORING_REGISTER_FILES_UPDATE = 6  # 5.5
IORING_REGISTER_RING_FDS = 20  # 5.18
IORING_REGISTER_PBUF_RING = 22  # 5.19: a ring of provided buffers (struct io_uring_buf_reg)

# mmap offsets of the rings.
IORING_OFF_SQ_RING = 0
IORING_OFF_CQ_RING = 0x8000000
IORING_OFF_SQES = 0x10000000

# Opcodes (enum io_uring_op).
IORING_OP_NOP = 0
IORING_OP_POLL_ADD = 6
IORING_OP_TIMEOUT = 11
IORING_OP_ACCEPT = 13
IORING_OP_ASYNC_CANCEL = 14
IORING_OP_READ = 22
IORING_OP_SEND = 26
IORING_OP_RECV = 27

# sqe.flags.
IOSQE_FIXED_FILE = 1 << 0  # sqe.fd is an index into the registered file table
IOSQE_IO_LINK = 1 << 2
IOSQE_BUFFER_SELECT = 1 << 5  # 5.7: the kernel picks the buffer from group sqe.buf_group
IOSQE_CQE_SKIP_SUCCESS = 1 << 6  # 5.17

# sqe.len of IORING_OP_POLL_ADD (the poll mask is sqe.poll32_events, at SQE_OP_FLAGS).
IORING_POLL_ADD_MULTI = 1 << 0  # 5.13: multishot; a CQE without IORING_CQE_F_MORE ends it

# sqe.ioprio for send/recv and accept.
IORING_RECVSEND_POLL_FIRST = 1 << 0  # 5.19
IORING_ACCEPT_MULTISHOT = 1 << 0  # 5.19

# sqe.cancel_flags (op_flags) of IORING_OP_ASYNC_CANCEL.
IORING_ASYNC_CANCEL_ALL = 1 << 0  # 5.19
IORING_ASYNC_CANCEL_FD = 1 << 1  # 5.19
IORING_ASYNC_CANCEL_FD_FIXED = 1 << 3  # 6.0: the fd is a registered file index

# cqe.flags.
IORING_CQE_F_BUFFER = 1 << 0  # a provided buffer was used: its id is flags >> 16
IORING_CQE_F_MORE = 1 << 1
IORING_CQE_BUFFER_SHIFT = 16

# Layout of one 64-byte SQE: byte offsets of the fields we write.
SQE_SIZE = 64
SQE_OPCODE = 0  # u8
SQE_FLAGS = 1  # u8
SQE_IOPRIO = 2  # u16
SQE_FD = 4  # s32
SQE_OFF = 8  # u64 (addr2)
SQE_ADDR = 16  # u64
SQE_LEN = 24  # u32
SQE_OP_FLAGS = 28  # u32: msg_flags, accept_flags, timeout_flags
SQE_USER_DATA = 32  # u64
SQE_BUF_GROUP = 40  # u16 (buf_index / buf_group)
# One 16-byte CQE: u64 user_data, s32 res, u32 flags.
CQE_SIZE = 16


class SQRingOffsets(ctypes.Structure):
    _fields_ = [
        ("head", ctypes.c_uint32),
        ("tail", ctypes.c_uint32),
        ("ring_mask", ctypes.c_uint32),
        ("ring_entries", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("dropped", ctypes.c_uint32),
        ("array", ctypes.c_uint32),
        ("resv1", ctypes.c_uint32),
        ("user_addr", ctypes.c_uint64),
    ]


class CQRingOffsets(ctypes.Structure):
    _fields_ = [
        ("head", ctypes.c_uint32),
        ("tail", ctypes.c_uint32),
        ("ring_mask", ctypes.c_uint32),
        ("ring_entries", ctypes.c_uint32),
        ("overflow", ctypes.c_uint32),
        ("cqes", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("resv1", ctypes.c_uint32),
        ("user_addr", ctypes.c_uint64),
    ]


class Params(ctypes.Structure):
    """struct io_uring_params (120 bytes)."""

    _fields_ = [
        ("sq_entries", ctypes.c_uint32),
        ("cq_entries", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("sq_thread_cpu", ctypes.c_uint32),
        ("sq_thread_idle", ctypes.c_uint32),
        ("features", ctypes.c_uint32),
        ("wq_fd", ctypes.c_uint32),
        ("resv", ctypes.c_uint32 * 3),
        ("sq_off", SQRingOffsets),
        ("cq_off", CQRingOffsets),
    ]


class RsrcUpdate(ctypes.Structure):
    """struct io_uring_rsrc_update, as IORING_REGISTER_RING_FDS takes it (and struct
    io_uring_files_update, the same layout, as IORING_REGISTER_FILES_UPDATE does: ``data``
    points at the s32 fds)."""

    _fields_ = [
        ("offset", ctypes.c_uint32),
        ("resv", ctypes.c_uint32),
        ("data", ctypes.c_uint64),
    ]


class BufReg(ctypes.Structure):
    """struct io_uring_buf_reg, for IORING_REGISTER_PBUF_RING (40 bytes)."""

    _fields_ = [
        ("ring_addr", ctypes.c_uint64),
        ("ring_entries", ctypes.c_uint32),
        ("bgid", ctypes.c_uint16),
        ("flags", ctypes.c_uint16),
        ("resv", ctypes.c_uint64 * 3),
    ]


# struct io_uring_buf, one entry of a provided-buffer ring: u64 addr, u32 len, u16 bid,
# u16 resv. The ring's u16 tail lives in entry 0's resv field (byte 14): writing entry 0 must
# stop at byte 14 or it overwrites the tail.
BUF_ENTRY_SIZE = 16
BUF_ENTRY_WRITE = 14  # addr, len, bid: what we write of an entry
BUF_RING_TAIL = 14  # byte offset of the ring's tail (u16)
BUF_RING_MAX_ENTRIES = 32768  # the kernel's cap; a power of two


class Timespec(ctypes.Structure):
    """struct __kernel_timespec, for IORING_OP_TIMEOUT."""

    _fields_ = [("tv_sec", ctypes.c_int64), ("tv_nsec", ctypes.c_int64)]


assert ctypes.sizeof(Params) == 120
assert ctypes.sizeof(BufReg) == 40
