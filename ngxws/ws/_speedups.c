/*
 * C version of ngxws.ws.frames.PyFrameTracker: the per-read hot path.
 *
 * The proxy feeds every chunk it reads from a websocket tunnel to one tracker
 * per direction.  At ~10 M small frames/s per core a Python loop is far too
 * slow, so this file does the same header arithmetic as the reference in a
 * tight loop over the caller's buffer: no copies, no per-frame objects in
 * feed(), one result tuple per call.  The behaviour (including how a header
 * split across chunks is kept, and when `error` is set) must stay identical
 * to frames.py; tests/test_frames.py compares the two on random splits.
 *
 * Only the public CPython C API of 3.10+ is used.  The GIL is held
 * throughout: the work per call is far smaller than the cost of releasing it.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* Longest header: 2 + 8 (64-bit length) + 4 (masking key). */
#define MAX_HEADER 14

typedef struct {
    PyObject_HEAD
    uint64_t skip;                  /* payload bytes of the frame in flight still to come */
    uint64_t pending_len;           /* its payload length, reported when skip reaches 0 */
    unsigned char pending_b0;       /* its FIN/opcode byte, for feed_frames */
    unsigned char head[MAX_HEADER]; /* start of a header cut by the end of the last chunk */
    unsigned char head_len;         /* always < MAX_HEADER */
    char error;                     /* stream cannot be followed: count nothing more */
    uint64_t reads;                 /* chunks fed so far: the tunnel's idle check compares it */
    int64_t *slot;                  /* counters[index]: frames, payload, bytes (count() adds) */
    Py_buffer counters;             /* held while slot is set: keeps the mapping exported */
    int64_t *ops;                   /* counters[opcodes]: frames per opcode class, message sizes */
    uint64_t msg;                   /* payload so far of the data message in flight (count()) */
    /* The stream's first close frame (frames.py: "Close frames"): rare, so
     * kept off the data path -- only a close frame's header or a chunk of
     * its payload touches these. */
    unsigned char cl_state;         /* CL_NONE, CL_TAKING (in flight), CL_SEEN */
    unsigned char cl_new;           /* it completed since count() last returned */
    unsigned char cl_masked;
    unsigned char cl_mask[4];
    unsigned char cl_want;          /* payload bytes kept: min(length, CLOSE_KEEP) */
    unsigned char cl_have;          /* kept so far (unmasked) */
    unsigned char cl_buf[125];
    uint64_t cl_len;                /* its payload length */
} FrameTracker;

#define CL_NONE 0
#define CL_TAKING 1
#define CL_SEEN 2
#define CLOSE_KEEP 125                  /* a control frame's largest payload (RFC 6455 5.5) */
#define OPCODE_FIELDS 13                /* frames.OPCODE_FIELDS: classes, then message sizes */
#define DIRECTION_FIELDS (OPCODE_FIELDS + 20) /* then frames.CLOSE_CODE_BUCKETS */

/* Opcode -> its counter in ops (frames.OPCODE_CLASSES): text, binary,
 * continuation, close, ping, pong, other (reserved 3-7, 0xB-0xF). */
static const unsigned char OPCLASS[16] = {2, 0, 1, 6, 6, 6, 6, 6, 3, 4, 5, 6, 6, 6, 6, 6};
#define N_CLASSES 7

/*
 * A frame completed (count() with opcodes): one more frame of its class, and
 * at the FIN of a data message its size into the histogram that follows the
 * classes (frames.MESSAGE_SIZE_BOUNDS: <=64, <=1Ki, <=16Ki, <=256Ki, <=1Mi,
 * more).  A text or binary frame starts a message, continuations add to it;
 * control frames (which may come between fragments) leave it alone.
 */
static inline int
frame_done(FrameTracker *self, int64_t *ops, unsigned int b0, uint64_t len)
{
    unsigned int op = b0 & 0x0F;
    uint64_t m;
    int b;

    ops[OPCLASS[op]]++;
    if (op > 2)
        return op == 8; /* a close frame: the caller looks at it (data frames never get here) */
    m = op ? len : self->msg + len;
    if (!(b0 & 0x80)) {
        self->msg = m;
        return 0;
    }
    self->msg = 0;
    b = m <= 64 ? 0 : m <= 1024 ? 1 : m <= 16384 ? 2 : m <= 262144 ? 3 : m <= 1048576 ? 4 : 5;
    ops[N_CLASSES + b]++;
    return 0;
}
#define OPCOUNT(b0, len) do { if (ops != NULL) frame_done(self, ops, (b0), (len)); } while (0)

/*
 * Close frames.  The tracker keeps the first close frame of its stream:
 * code and reason (payload unmasked, at most CLOSE_KEEP bytes), and when it
 * completes adds one to its code's bucket after the opcode block
 * (frames.close_code_bucket) and sets cl_new, which count() returns.  Its
 * header is seen where any header is (h: header start, hdr: its length);
 * its payload may come in any number of chunks.
 */
static void
close_begin(FrameTracker *self, const unsigned char *h, size_t hdr, uint64_t len)
{
    self->cl_masked = h[1] & 0x80;
    if (self->cl_masked)
        memcpy(self->cl_mask, h + hdr - 4, 4);
    self->cl_len = len;
    self->cl_want = (unsigned char)(len < CLOSE_KEEP ? len : CLOSE_KEEP);
    self->cl_have = 0;
    self->cl_state = CL_TAKING;
}

/* The next n payload bytes of the close frame in flight. */
static void
close_take(FrameTracker *self, const unsigned char *p, size_t n)
{
    size_t k = self->cl_have, i;

    if (n > (size_t)(self->cl_want - k))
        n = self->cl_want - k;
    for (i = 0; i < n; i++, k++)
        self->cl_buf[k] = self->cl_masked ? (unsigned char)(p[i] ^ self->cl_mask[k & 3]) : p[i];
    self->cl_have = (unsigned char)k;
}

/* frames.PyFrameTracker.close's code: 1005 for an empty payload (RFC 6455
 * 7.1.5), -1 for a one-byte one (no code can be read). */
static long
close_code(FrameTracker *self)
{
    if (self->cl_len == 0)
        return 1005;
    if (self->cl_len == 1)
        return -1;
    return ((long)self->cl_buf[0] << 8) | self->cl_buf[1];
}

static void
close_end(FrameTracker *self)
{
    long code = close_code(self);
    int b;

    self->cl_state = CL_SEEN;
    self->cl_new = 1;
    if (self->ops == NULL)
        return;
    b = code >= 1000 && code <= 1015 ? (int)(code - 1000)
        : code >= 3000 && code <= 3999 ? 16
        : code >= 4000 && code <= 4999 ? 17
        : 18;
    self->ops[OPCODE_FIELDS + b]++;
}

/* A close frame whose header and payload are both in this chunk. */
static void
close_whole(FrameTracker *self, const unsigned char *h, size_t hdr, uint64_t len)
{
    if (self->cl_state != CL_NONE)
        return; /* not the first */
    close_begin(self, h, hdr, len);
    close_take(self, h + hdr, (size_t)len);
    close_end(self);
}

/* A frame complete in this chunk (h: its header, payload after it): its
 * opcode counters (count()) and, for a close frame, the above.  A data
 * frame costs nothing more than frame_done's own test of its opcode. */
#define FRAME_DONE(h, hdr, len)                                                 \
    do {                                                                        \
        if (ops != NULL) {                                                      \
            if (frame_done(self, ops, (h)[0], (len)))                           \
                close_whole(self, (h), (hdr), (len));                           \
        }                                                                       \
        else if (((h)[0] & 0x0F) == 8)                                          \
            close_whole(self, (h), (hdr), (len));                               \
    } while (0)

/*
 * Decode the header at p, given `avail` readable bytes.
 * Returns the header length (masking key included) and stores the payload
 * length; 0 if the header is not complete within avail; -1 for a 64-bit
 * length with the top bit set (RFC 6455 5.2 forbids it; the stream is lost).
 */
static inline int
parse_header(const unsigned char *p, size_t avail, uint64_t *length)
{
    uint64_t len;
    size_t hdr;
    unsigned int b1;

    if (avail < 2)
        return 0;
    b1 = p[1];
    len = b1 & 0x7F;
    hdr = (b1 & 0x80) ? 6 : 2;
    if (len < 126) {
        if (avail < hdr)
            return 0;
    }
    else if (len == 126) {
        hdr += 2;
        if (avail < hdr)
            return 0;
        len = ((uint64_t)p[2] << 8) | p[3];
    }
    else {
        hdr += 8;
        if (avail < hdr)
            return 0;
        len = ((uint64_t)p[2] << 56) | ((uint64_t)p[3] << 48) | ((uint64_t)p[4] << 40) |
              ((uint64_t)p[5] << 32) | ((uint64_t)p[6] << 24) | ((uint64_t)p[7] << 16) |
              ((uint64_t)p[8] << 8) | (uint64_t)p[9];
        if (len >> 63)
            return -1;
    }
    *length = len;
    return (int)hdr;
}

/*
 * What scan() does with each frame completed, besides counting it: nothing
 * (emit NULL: feed, count), a tuple appended to a list (feed_frames), a
 * ws_log line rendered (log, _loglines.c).  Returns -1 with a Python
 * exception set to stop the scan.
 */
typedef struct Emit Emit;
struct Emit {
    int (*frame)(Emit *emit, unsigned char b0, uint64_t length);
};

typedef struct {
    Emit base;
    PyObject *list;
} ListEmit;

/* Append (opcode, length, fin) to the list; feed_frames only. */
static int
append_frame(Emit *emit, unsigned char b0, uint64_t length)
{
    PyObject *item;
    int rc;

    item = Py_BuildValue("(iKO)", b0 & 0x0F, (unsigned long long)length,
                         (b0 & 0x80) ? Py_True : Py_False);
    if (item == NULL)
        return -1;
    rc = PyList_Append(((ListEmit *)emit)->list, item);
    Py_DECREF(item);
    return rc;
}

/* A frame whose header has passed but whose last `missing` payload bytes have not. */
static inline void
hold(FrameTracker *self, unsigned char b0, uint64_t length, uint64_t missing)
{
    self->skip = missing;
    self->pending_len = length;
    self->pending_b0 = b0;
}

/*
 * Scan one chunk, updating the tracker state; count the frames completed in
 * it (last payload byte in this chunk, as the module's
 * frame_counter_process_message reports them) into *frames / *payload and,
 * if emit is not NULL, hand each frame to it.
 * Returns -1 only if emit failed (a Python exception is set).
 *
 * *payload cannot overflow: only the first frame of a chunk (the one that was
 * in flight) may have a payload longer than the chunk, and that one is below
 * 2**63.
 */
static int
scan(FrameTracker *self, const unsigned char *p, size_t n, uint64_t *frames_out,
     uint64_t *payload_out, Emit *emit, int64_t *ops)
{
    uint64_t frames = 0, payload = 0, len = 0;
    size_t pos = 0, avail;
    int hdr;

    self->reads++;
    if (self->error)
        goto done;
    if (self->skip) {
        if (self->cl_state == CL_TAKING) /* the close frame in flight */
            close_take(self, p, self->skip < n ? (size_t)self->skip : n);
        if (self->skip > n) {
            self->skip -= n;
            goto done;
        }
        pos = (size_t)self->skip;
        self->skip = 0;
        frames = 1;
        payload = self->pending_len;
        OPCOUNT(self->pending_b0, self->pending_len);
        if (self->cl_state == CL_TAKING)
            close_end(self);
        if (emit != NULL && emit->frame(emit, self->pending_b0, self->pending_len) < 0)
            return -1;
    }
    else if (self->head_len) {
        /* Finish the header kept from the last chunk with the start of this one. */
        unsigned char buf[MAX_HEADER];
        size_t kept = self->head_len;
        size_t take = n < MAX_HEADER - kept ? n : MAX_HEADER - kept;

        memcpy(buf, self->head, kept);
        memcpy(buf + kept, p, take);
        hdr = parse_header(buf, kept + take, &len);
        if (hdr == 0) {
            memcpy(self->head, buf, kept + take);
            self->head_len = (unsigned char)(kept + take);
            goto done;
        }
        self->head_len = 0;
        if (hdr < 0) {
            self->error = 1;
            goto done;
        }
        pos = (size_t)hdr - kept; /* > 0: the kept bytes alone were not a header */
        avail = n - pos;
        if ((buf[0] & 0x0F) == 8 && self->cl_state == CL_NONE) { /* once per chunk at most */
            close_begin(self, buf, (size_t)hdr, len);
            close_take(self, p + pos, len < avail ? (size_t)len : avail);
        }
        if (len > avail) {
            hold(self, buf[0], len, len - avail);
            goto done;
        }
        frames = 1;
        payload = len;
        OPCOUNT(buf[0], len);
        if (self->cl_state == CL_TAKING)
            close_end(self);
        if (emit != NULL && emit->frame(emit, buf[0], len) < 0)
            return -1;
        pos += (size_t)len;
    }
    /* The hot loop: header arithmetic, then jump over the payload. */
    while (pos < n) {
        avail = n - pos;
        hdr = parse_header(p + pos, avail, &len);
        if (hdr <= 0) {
            if (hdr == 0) {
                memcpy(self->head, p + pos, avail); /* avail < hdr <= MAX_HEADER */
                self->head_len = (unsigned char)avail;
            }
            else {
                self->error = 1;
            }
            break;
        }
        avail -= (size_t)hdr;
        if (len > avail) {
            if ((p[pos] & 0x0F) == 8 && self->cl_state == CL_NONE) { /* the chunk's last frame */
                close_begin(self, p + pos, (size_t)hdr, len);
                close_take(self, p + pos + hdr, avail);
            }
            hold(self, p[pos], len, len - avail);
            break;
        }
        frames++;
        payload += len;
        FRAME_DONE(p + pos, (size_t)hdr, len);
        if (emit != NULL && emit->frame(emit, p[pos], len) < 0)
            return -1;
        pos += (size_t)hdr + (size_t)len;
    }
done:
    *frames_out = frames;
    *payload_out = payload;
    return 0;
}

/*
 * Run scan() over any C-contiguous bytes-like object.  bytes, the common
 * case, is read in place without the buffer protocol's bookkeeping.
 */
static int
scan_object(FrameTracker *self, PyObject *data, uint64_t *frames, uint64_t *payload,
            Emit *emit)
{
    Py_buffer view;
    int rc;

    if (PyBytes_Check(data))
        return scan(self, (const unsigned char *)PyBytes_AS_STRING(data),
                    (size_t)PyBytes_GET_SIZE(data), frames, payload, emit, NULL);
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return -1;
    rc = scan(self, (const unsigned char *)view.buf, (size_t)view.len, frames, payload, emit, NULL);
    PyBuffer_Release(&view);
    return rc;
}

PyDoc_STRVAR(feed_doc,
"feed(data, /)\n--\n\n"
"Scan one chunk; return (frames, payload) for frames completed in it.");

static PyObject *
FrameTracker_feed(FrameTracker *self, PyObject *data)
{
    uint64_t frames, payload;
    PyObject *result, *a, *b;

    if (scan_object(self, data, &frames, &payload, NULL) < 0)
        return NULL;
    a = PyLong_FromUnsignedLongLong((unsigned long long)frames);
    if (a == NULL)
        return NULL;
    b = PyLong_FromUnsignedLongLong((unsigned long long)payload);
    if (b == NULL) {
        Py_DECREF(a);
        return NULL;
    }
    result = PyTuple_New(2);
    if (result == NULL) {
        Py_DECREF(a);
        Py_DECREF(b);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, a);
    PyTuple_SET_ITEM(result, 1, b);
    return result;
}

PyDoc_STRVAR(feed_frames_doc,
"feed_frames(data, /)\n--\n\n"
"Scan one chunk like feed(); return [(opcode, payload_length, fin), ...],\n"
"one per frame completed in it.");

static PyObject *
FrameTracker_feed_frames(FrameTracker *self, PyObject *data)
{
    uint64_t frames, payload;
    ListEmit emit = {{append_frame}, PyList_New(0)};

    if (emit.list == NULL)
        return NULL;
    if (scan_object(self, data, &frames, &payload, &emit.base) < 0) {
        Py_DECREF(emit.list);
        return NULL;
    }
    return emit.list;
}

PyDoc_STRVAR(count_doc,
"count(data, /)\n--\n\n"
"Scan one chunk like feed() and add (frames, payload, len(data)) to the\n"
"three counters at counters[index:index+3]; return True when the relay\n"
"must look: error, or the stream's first close frame completed since the\n"
"last count().\n\n"
"The relay's one call per read: frame scan and this worker's shared-memory\n"
"slot update together, no result tuple, no Python arithmetic.");

/* count() on a raw chunk, each frame also handed to emit when not NULL (log(),
 * _loglines.c): 1 when the relay must look, -1 when emit failed. */
static int
count_emit(FrameTracker *self, const unsigned char *p, size_t n, Emit *emit,
           uint64_t *frames_out, uint64_t *payload_out)
{
    uint64_t frames, payload;

    if (scan(self, p, n, &frames, &payload, emit, self->ops) < 0)
        return -1;
    *frames_out = frames;
    *payload_out = payload;
    if (self->slot != NULL) {
        /* Signed 64-bit like the Python view of the mapping ('q'); the
         * worker owns its slot, so plain adds (no atomics), as the module's. */
        self->slot[0] += (int64_t)frames;
        self->slot[1] += (int64_t)payload;
        self->slot[2] += (int64_t)n;
    }
    if (!self->cl_new)
        return self->error;
    self->cl_new = 0; /* rare: the first close frame completed */
    return 1;
}

/* count() on a raw chunk (also Splice's read, _splice.c): 1 when the relay must look. */
static int
count_chunk(FrameTracker *self, const unsigned char *p, size_t n)
{
    uint64_t frames, payload;

    return count_emit(self, p, n, NULL, &frames, &payload);
}

static PyObject *
FrameTracker_count(FrameTracker *self, PyObject *data)
{
    Py_buffer view;
    int lost;

    if (PyBytes_Check(data))
        return PyBool_FromLong(count_chunk(self, (const unsigned char *)PyBytes_AS_STRING(data),
                                           (size_t)PyBytes_GET_SIZE(data)));
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    lost = count_chunk(self, (const unsigned char *)view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyBool_FromLong(lost);
}

static PyObject *
FrameTracker_get_close(FrameTracker *self, void *Py_UNUSED(closure))
{
    if (self->cl_state != CL_SEEN)
        Py_RETURN_NONE;
    return Py_BuildValue("(ly#)", close_code(self),
                         (const char *)self->cl_buf + (self->cl_have > 2 ? 2 : self->cl_have),
                         (Py_ssize_t)(self->cl_have > 2 ? self->cl_have - 2 : 0));
}

static PyObject *
FrameTracker_get_reads(FrameTracker *self, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong((unsigned long long)self->reads);
}

static PyObject *
FrameTracker_get_error(FrameTracker *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->error);
}

static PyObject *
FrameTracker_get_at_boundary(FrameTracker *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(!(self->skip || self->head_len || self->error));
}

static PyObject *
FrameTracker_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"counters", "index", "opcodes", NULL};
    PyObject *counters = Py_None;
    Py_ssize_t index = 0, opcodes = -1;
    FrameTracker *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|Onn:FrameTracker", kwlist, &counters, &index,
                                     &opcodes))
        return NULL;
    self = (FrameTracker *)type->tp_alloc(type, 0); /* zeroed: nothing in flight, no head, no error */
    if (self == NULL || counters == Py_None)
        return (PyObject *)self;
    if (PyObject_GetBuffer(counters, &self->counters, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) {
        Py_DECREF(self);
        /* the same exception as the Python reference, whatever the exporter says */
        PyErr_SetString(PyExc_TypeError, "counters must be a writable array of signed 64-bit ints");
        return NULL;
    }
    if (index < 0 || (size_t)self->counters.len < ((size_t)index + 3) * sizeof(int64_t)) {
        PyBuffer_Release(&self->counters);
        Py_DECREF(self);
        PyErr_SetString(PyExc_IndexError, "counters[index:index+3] out of range");
        return NULL;
    }
    if (self->counters.itemsize != (Py_ssize_t)sizeof(int64_t) ||
        ((uintptr_t)self->counters.buf % sizeof(int64_t)) != 0) {
        PyBuffer_Release(&self->counters);
        Py_DECREF(self);
        PyErr_SetString(PyExc_TypeError, "counters must be an aligned array of signed 64-bit ints");
        return NULL;
    }
    if (opcodes >= 0 &&
        (size_t)self->counters.len < ((size_t)opcodes + DIRECTION_FIELDS) * sizeof(int64_t)) {
        PyBuffer_Release(&self->counters);
        Py_DECREF(self);
        PyErr_SetString(PyExc_IndexError, "counters[opcodes:opcodes+33] out of range");
        return NULL;
    }
    self->slot = (int64_t *)self->counters.buf + index;
    if (opcodes >= 0)
        self->ops = (int64_t *)self->counters.buf + opcodes;
    return (PyObject *)self;
}

static void
FrameTracker_dealloc(FrameTracker *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    if (self->slot != NULL)
        PyBuffer_Release(&self->counters);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp); /* instances of heap types own a reference to their type */
}

#include "_loglines.c" /* LineFormat and FrameTracker.log (use count_emit) */

static PyMethodDef FrameTracker_methods[] = {
    {"feed", (PyCFunction)FrameTracker_feed, METH_O, feed_doc},
    {"feed_frames", (PyCFunction)FrameTracker_feed_frames, METH_O, feed_frames_doc},
    {"count", (PyCFunction)FrameTracker_count, METH_O, count_doc},
    {"log", (PyCFunction)(void (*)(void))FrameTracker_log, METH_FASTCALL, log_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef FrameTracker_getset[] = {
    {"error", (getter)FrameTracker_get_error, NULL,
     "True once the stream cannot be followed; then feed*() return nothing.", NULL},
    {"reads", (getter)FrameTracker_get_reads, NULL,
     "How many chunks were fed (feed, feed_frames or count) so far.", NULL},
    {"close", (getter)FrameTracker_get_close, NULL,
     "(code, reason bytes) of the stream's first close frame once it completed, else None.",
     NULL},
    {"at_boundary", (getter)FrameTracker_get_at_boundary, NULL,
     "True when the bytes fed so far end exactly between two frames (False after error).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(FrameTracker_doc,
"FrameTracker(counters=None, index=0, opcodes=-1)\n--\n\n"
"Follows one direction of a websocket byte stream, reading frame headers only.\n\n"
"C version of ngxws.ws.frames.PyFrameTracker, with the identical interface.");

static PyType_Slot FrameTracker_slots[] = {
    {Py_tp_doc, (void *)FrameTracker_doc},
    {Py_tp_new, FrameTracker_new},
    {Py_tp_dealloc, FrameTracker_dealloc},
    {Py_tp_methods, FrameTracker_methods},
    {Py_tp_getset, FrameTracker_getset},
    {0, NULL},
};

static PyType_Spec FrameTracker_spec = {
    .name = "ngxws.ws._speedups.FrameTracker",
    .basicsize = sizeof(FrameTracker),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = FrameTracker_slots,
};

#include "_relay.c" /* Relay (uses count_chunk) */

/* The module's type made from spec, added under name. */
static int
add_type(PyObject *module, PyType_Spec *spec, const char *name)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, NULL);
    int rc;

    if (type == NULL)
        return -1;
    rc = PyModule_AddObjectRef(module, name, type);
    Py_DECREF(type);
    return rc;
}

#include "_splice.c" /* Splice (uses count_chunk) */
#include "_poller.c" /* Poller (dispatches to Splice) */
#include "_head101.c" /* parse_101 (the upgrade's 101, head101.py's reader) */
#include "_dial.c"    /* dial (the upgrade's upstream connect, dial.py) */

static PyMethodDef speedups_methods[] = {
    {"parse_101", (PyCFunction)(void (*)(void))speedups_parse_101, METH_FASTCALL, parse_101_doc},
    {"dial", (PyCFunction)(void (*)(void))speedups_dial, METH_FASTCALL, dial_doc},
    {NULL, NULL, 0, NULL},
};

static int
speedups_exec(PyObject *module)
{
    PyObject *lf;

    if (add_type(module, &FrameTracker_spec, "FrameTracker") < 0 || add_type(module, &Relay_spec, "Relay") < 0 ||
        add_type(module, &Splice_spec, "Splice") < 0 || add_type(module, &Poller_spec, "Poller") < 0 ||
        add_type(module, &LineFormat_spec, "LineFormat") < 0)
        return -1;
    lf = PyObject_GetAttrString(module, "LineFormat");
    if (lf == NULL)
        return -1;
    LineFormatType = (PyTypeObject *)lf; /* the module holds it for the process's life */
    Py_DECREF(lf);
    return poller_constants(module);
}

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ngxws.ws._speedups",
    .m_doc = "C speedups for ngxws.ws.frames (optional; frames.py falls back to Python).",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
