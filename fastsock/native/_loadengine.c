/* fastsock.native._loadengine: loadcore (loadcore.c) as a CPython function.
 *
 * One narrow call: run(fds, ...) -> dict. The whole measurement runs with the GIL released;
 * Python owns the sockets, the CLI, the pattern bytes, the histogram layout and the report.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "loadcore.h"

static const char *const ERROR_NAMES[LC_NERR] = {"mismatch", "short_read", "reset",
                                                  "refused",  "closed",     "other"};

/* Called by loadcore, without the GIL, when a wait returned EINTR and every 250 ms: run
 * Python's signal handlers (^C raises KeyboardInterrupt) and stop if one raised. */
static int interrupted(void *arg)
{
    (void)arg;
    PyGILState_STATE state = PyGILState_Ensure();
    int stop = PyErr_CheckSignals() < 0;
    PyGILState_Release(state);
    return stop;
}

static int parse_workload(const char *name)
{
    if (strcmp(name, "echo") == 0)
        return LC_ECHO;
    if (strcmp(name, "send") == 0)
        return LC_SEND;
    if (strcmp(name, "recv") == 0)
        return LC_RECV;
    return -1;
}

static PyObject *build_result(const struct lc_result *r)
{
    PyObject *errors = PyDict_New(), *samples = PyList_New(0);
    if (!errors || !samples)
        goto fail;
    for (int i = 0; i < LC_NERR; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(r->errors[i]);
        if (!v || PyDict_SetItemString(errors, ERROR_NAMES[i], v) < 0) {
            Py_XDECREF(v);
            goto fail;
        }
        Py_DECREF(v);
    }
    for (int i = 0; i < r->nsamples; i++) {
        PyObject *s = PyUnicode_DecodeUTF8(r->samples[i], (Py_ssize_t)strlen(r->samples[i]),
                                           "replace");
        if (!s || PyList_Append(samples, s) < 0) {
            Py_XDECREF(s);
            goto fail;
        }
        Py_DECREF(s);
    }
    return Py_BuildValue("{s:K,s:K,s:L,s:L,s:K,s:i,s:N,s:N,s:d,s:d}", "completed",
                         (unsigned long long)r->completed, "completed_total",
                         (unsigned long long)r->completed_total, "window_start_ns",
                         (long long)r->window_start_ns, "window_end_ns",
                         (long long)r->window_end_ns, "incomplete",
                         (unsigned long long)r->incomplete, "conns_alive", r->conns_alive,
                         "errors", errors, "error_samples", samples, "cpu_user_s", r->cpu_user_s,
                         "cpu_sys_s", r->cpu_sys_s);
fail:
    Py_XDECREF(errors);
    Py_XDECREF(samples);
    return NULL;
}

static PyObject *run(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    static char *keywords[] = {"fds",        "workload",  "size",    "depth",    "rate",
                               "t0_ns",      "warm_end_ns", "end_ns", "first_index",
                               "pattern",    "period",    "counts",  "half_magnitude",
                               "lowest",     "highest",   "progress", "wfds",
                               "fd_io",      "tx_chunk",  "conn_counts", NULL};
    PyObject *fd_list, *counts_obj = Py_None, *progress_obj = Py_None, *wfd_list = Py_None;
    PyObject *conn_counts_obj = Py_None;
    int fd_io = 0;
    unsigned long long tx_chunk = 0;
    const char *workload;
    unsigned long long size, depth, period;
    double rate;
    long long t0, warm_end, end, lowest, highest;
    int first_index, half_magnitude;
    Py_buffer pattern = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OsKKdLLLiy*KOiLLO|OpKO", keywords,
                                     &fd_list, &workload, &size, &depth, &rate, &t0, &warm_end,
                                     &end, &first_index, &pattern, &period, &counts_obj,
                                     &half_magnitude, &lowest, &highest, &progress_obj,
                                     &wfd_list, &fd_io, &tx_chunk, &conn_counts_obj))
        return NULL;

    PyObject *result = NULL, *fast = NULL, *wfast = NULL;
    int *fds = NULL, *wfds = NULL;
    Py_buffer counts = {0}, progress = {0}, conn_counts = {0};
    struct lc_result *r = NULL;
    struct lc_params p = {0};
    p.workload = parse_workload(workload);
    if (p.workload < 0) {
        PyErr_Format(PyExc_ValueError, "workload %s is not native", workload);
        goto done;
    }
    if (counts_obj != Py_None &&
        PyObject_GetBuffer(counts_obj, &counts, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        goto done;
    if (counts.buf && counts.len % 8) {
        PyErr_SetString(PyExc_ValueError, "counts must be an int64 array");
        goto done;
    }
    if (progress_obj != Py_None &&
        PyObject_GetBuffer(progress_obj, &progress, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        goto done;
    if (progress.buf && progress.len < 8) {
        PyErr_SetString(PyExc_ValueError, "progress must hold one int64");
        goto done;
    }
    if (conn_counts_obj != Py_None &&
        PyObject_GetBuffer(conn_counts_obj, &conn_counts, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        goto done;
    fast = PySequence_Fast(fd_list, "fds must be a sequence of file descriptors");
    if (!fast)
        goto done;
    Py_ssize_t nconns = PySequence_Fast_GET_SIZE(fast);
    if (nconns < 1 || nconns > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "fds must hold at least one file descriptor");
        goto done;
    }
    if (conn_counts.buf && conn_counts.len < nconns * 8) {
        PyErr_SetString(PyExc_ValueError, "conn_counts must hold one uint64 per connection");
        goto done;
    }
    if (wfd_list != Py_None) {
        wfast = PySequence_Fast(wfd_list, "wfds must be a sequence of file descriptors");
        if (!wfast)
            goto done;
        if (PySequence_Fast_GET_SIZE(wfast) != nconns) {
            PyErr_SetString(PyExc_ValueError, "wfds must be as long as fds");
            goto done;
        }
        wfds = PyMem_Malloc((size_t)nconns * sizeof(*wfds));
        if (!wfds) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < nconns; i++) {
            long fd = PyLong_AsLong(PySequence_Fast_GET_ITEM(wfast, i));
            if (fd == -1 && PyErr_Occurred())
                goto done;
            wfds[i] = (int)fd;
        }
    }
    fds = PyMem_Malloc((size_t)nconns * sizeof(*fds));
    r = PyMem_Malloc(sizeof(*r));
    if (!fds || !r) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < nconns; i++) {
        long fd = PyLong_AsLong(PySequence_Fast_GET_ITEM(fast, i));
        if (fd == -1 && PyErr_Occurred())
            goto done;
        fds[i] = (int)fd;
    }
    if ((unsigned long long)pattern.len < period + 1) {
        PyErr_SetString(PyExc_ValueError, "pattern shorter than its period");
        goto done;
    }
    p.size = size;
    p.depth = depth;
    p.rate = rate;
    p.t0_ns = t0;
    p.warm_end_ns = warm_end;
    p.end_ns = end;
    p.first_index = first_index;
    p.pattern = pattern.buf;
    p.period = period;
    p.span = (uint64_t)pattern.len - period;
    if (p.span < 256 * 1024) {
        PyErr_SetString(PyExc_ValueError, "pattern span must be at least 256 KiB");
        goto done;
    }
    p.hist_counts = counts.buf;
    p.hist_len = counts.buf ? (size_t)counts.len / 8 : 0;
    p.hist_half_magnitude = half_magnitude;
    p.hist_lowest = lowest;
    p.hist_highest = highest;
    p.progress = progress.buf;
    p.interrupted = interrupted;
    p.verify = 1;
    p.wfds = wfds;
    p.fd_io = fd_io;
    p.tx_chunk = tx_chunk;
    p.conn_counts = conn_counts.buf;

    int status;
    Py_BEGIN_ALLOW_THREADS
    status = lc_run(&p, fds, (int)nconns, r);
    Py_END_ALLOW_THREADS
    if (r->stopped && PyErr_Occurred())
        goto done;
    if (status < 0) {
        PyErr_SetString(PyExc_OSError, r->fatal);
        goto done;
    }
    result = build_result(r);
done:
    Py_XDECREF(fast);
    Py_XDECREF(wfast);
    PyMem_Free(wfds);
    PyMem_Free(fds);
    PyMem_Free(r);
    PyBuffer_Release(&pattern);
    if (counts.obj)
        PyBuffer_Release(&counts);
    if (progress.obj)
        PyBuffer_Release(&progress);
    if (conn_counts.obj)
        PyBuffer_Release(&conn_counts);
    return result;
}

/* The counts index loadcore records a latency at: lets the tests compare the C arithmetic
 * with HdrHistogram's own, value by value. */
static PyObject *hist_index(PyObject *self, PyObject *args)
{
    (void)self;
    long long value, lowest, highest;
    int half_magnitude;
    if (!PyArg_ParseTuple(args, "LiLL", &value, &half_magnitude, &lowest, &highest))
        return NULL;
    if (lowest < 1 || highest < lowest || half_magnitude < 1 || half_magnitude > 30) {
        PyErr_SetString(PyExc_ValueError, "bad histogram layout");
        return NULL;
    }
    return PyLong_FromSize_t(lc_hist_index(value, half_magnitude, lowest, highest));
}

static PyMethodDef methods[] = {
    {"hist_index", hist_index, METH_VARARGS,
     "hist_index(value, half_magnitude, lowest, highest) -> int: the HDR counts index."},
    {"run", (PyCFunction)(void (*)(void))run, METH_VARARGS | METH_KEYWORDS,
     "run(fds, *, workload, size, depth, rate, t0_ns, warm_end_ns, end_ns, first_index, "
     "pattern, period, counts, half_magnitude, lowest, highest, progress, wfds=None, fd_io=False, "
     "tx_chunk=0, conn_counts=None) -> dict\n\n"
     "Run one process's load on connected non-blocking sockets with the GIL released; wfds: "
     "write ends of one-way pairs (pipes, with fd_io: read/write instead of recv/send); "
     "tx_chunk: the most one send writes (seqpacket: the message size); conn_counts: a writable "
     "uint64 buffer (one per connection) that receives each one's count in the window."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "fastsock.native._loadengine",
    .m_doc = "The native hot loop of fastsock load (see loadcore.h).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__loadengine(void)
{
    return PyModule_Create(&module);
}
