/*
 * ws_log lines in C (included by _speedups.c for scan/count_emit): a
 * logged tunnel side's read is one call, FrameTracker.log(data, fmt, now),
 * that scans the frames, counts them into the shared slot as count() does,
 * and renders each frame's line into one bytes object.
 *
 * The reference is ngxws.sinks.wslog: FrameLogger.lines_for_frames with
 * BoundTemplate.frame_line (the module's per-frame line, or the chainstack
 * fork's per-message line), whose output encoded as the log file encodes it
 * (UTF-8, surrogateescape) these bytes must equal -- tests/test_loglines.py
 * compares the two on random streams and templates.  What a line holds per
 * connection (the request's variables, escaped) is rendered once in Python
 * and arrives here as literal bytes; this file fills in the per-frame slots
 * (opcode, sizes, opcode name) and the per-read ones (source, age, times).
 */

/* Slot codes: wslog.C_SLOTS lists the names in this order. */
enum {
    SL_OPCODE,      /* $ws_opcode */
    SL_PAYLOAD,     /* $ws_payload_size */
    SL_MESSAGE,     /* $ws_message_size */
    SL_OPNAME,      /* $ws_opcode_name */
    SL_SOURCE,      /* $ws_packet_source */
    SL_AGE,         /* $ws_conn_age */
    SL_DURATION,    /* $ws_conn_duration */
    SL_TIME_LOCAL,  /* $time_local */
    SL_ISO8601,     /* $time_iso8601 */
    SL_MSEC,        /* $msec */
    N_SLOTS,
    SL_LITERAL = N_SLOTS
};
#define FIRST_PER_READ SL_SOURCE /* slots from here on are the same for a whole read */
#define FIRST_CLOCK SL_TIME_LOCAL

typedef struct {
    int kind;          /* SL_* */
    const char *text;  /* SL_LITERAL: its bytes (owned by LineFormat.pieces) */
    Py_ssize_t len;
} Piece;

typedef struct {
    PyObject_HEAD
    PyObject *pieces;  /* the tuple given: bytes literals and slot codes */
    PyObject *source;  /* bytes: this direction's $ws_packet_source */
    PyObject *clock[N_SLOTS - FIRST_CLOCK]; /* the worker's TimeCache methods, or None */
    double opened_at;  /* time.time() at the 101 */
    int every;         /* 1: a line per frame (ws_log_format); 0: per data message, at its FIN */
    uint64_t msg;      /* payload so far of the data message in flight (lines_for_frames' size) */
    Py_ssize_t npieces;
    Py_ssize_t fixed;  /* literal bytes per line */
    Piece *piece;
} LineFormat;

static PyTypeObject *LineFormatType; /* set by speedups_exec: log()'s type check */

/*
 * Lines are rendered into one scratch buffer shared by every LineFormat: a
 * worker is one thread and log() never runs Python while it writes there,
 * so a tunnel keeps no buffer of its own (bench W6) and the memory is the
 * largest read's lines, once per process.
 */
static char *scratch;
static size_t scratch_cap;

/* One read's rendering: scan()'s emitter. */
typedef struct {
    Emit base;
    LineFormat *fmt;
    double now;
    int ready;                 /* the per-read values below are set */
    size_t used;               /* bytes rendered into scratch */
    size_t per_line;           /* a bound on one line's length */
    const char *val[N_SLOTS];  /* per-read slots' text */
    Py_ssize_t vlen[N_SLOTS];
    char age[24], duration[24];
    PyObject *keep[N_SLOTS - FIRST_CLOCK]; /* the clock's strings, held while rendering */
} LogEmit;

/* Decimal digits of v at the end of out[24]; returns where they start. */
static char *
decimal(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static void
set_decimal(LogEmit *le, int slot, char *buf, uint64_t v)
{
    char *start = decimal(buf + 24, v);

    le->val[slot] = start;
    le->vlen[slot] = buf + 24 - start;
}

/*
 * The values every line of this read shares, worked out at its first line
 * as the generated Python line function does (wslog._SLOT_EXPR): the
 * module's age is ngx_time() - start in whole seconds, both truncated.
 */
static int
prepare(LogEmit *le)
{
    LineFormat *f = le->fmt;
    double now = le->now;
    long long opened = (long long)f->opened_at;
    Py_ssize_t i;
    size_t bound = (size_t)f->fixed + 1;

    le->val[SL_SOURCE] = PyBytes_AS_STRING(f->source);
    le->vlen[SL_SOURCE] = PyBytes_GET_SIZE(f->source);
    set_decimal(le, SL_AGE, le->age, now >= (double)opened ? (uint64_t)((long long)now - opened) : 0);
    set_decimal(le, SL_DURATION, le->duration,
                now >= f->opened_at ? (uint64_t)((now - f->opened_at) * 1000) : 0);
    for (i = 0; i < N_SLOTS - FIRST_CLOCK; i++) {
        PyObject *fn = f->clock[i], *arg, *text;
        const char *utf8;
        Py_ssize_t n;

        if (fn == Py_None)
            continue;
        arg = PyFloat_FromDouble(now);
        if (arg == NULL)
            return -1;
        text = PyObject_CallOneArg(fn, arg);
        Py_DECREF(arg);
        if (text == NULL)
            return -1;
        le->keep[i] = text;
        utf8 = PyUnicode_AsUTF8AndSize(text, &n);
        if (utf8 == NULL)
            return -1;
        le->val[FIRST_CLOCK + i] = utf8;
        le->vlen[FIRST_CLOCK + i] = n;
    }
    for (i = 0; i < f->npieces; i++) {
        int kind = f->piece[i].kind;

        if (kind == SL_LITERAL)
            continue;
        bound += kind >= FIRST_PER_READ ? (size_t)le->vlen[kind] : 24; /* a uint64 or an opcode name */
    }
    le->per_line = bound;
    le->ready = 1;
    return 0;
}

static const char *const OPNAMES[16] = {
    "continuation", "text", "binary", NULL, NULL, NULL, NULL, NULL,
    "close", "ping", "pong", NULL, NULL, NULL, NULL, NULL,
};
static const unsigned char OPNAME_LEN[16] = {12, 4, 6, 0, 0, 0, 0, 0, 5, 4, 4, 0, 0, 0, 0, 0};

/*
 * scan()'s emitter: the frame's line, if it gets one (lines_for_frames: a
 * control frame is its own message and leaves the data message alone; a
 * message line comes at a data message's FIN only).
 */
static int
log_frame(Emit *emit, unsigned char b0, uint64_t len)
{
    LogEmit *le = (LogEmit *)emit;
    LineFormat *f = le->fmt;
    unsigned int op = b0 & 0x0F;
    uint64_t message;
    char num[24], *out;
    Py_ssize_t i;

    if (op >= 8) {
        if (!f->every)
            return 0;
        message = len;
    }
    else {
        message = op == 0 ? f->msg + len : len;
        f->msg = (b0 & 0x80) ? 0 : message;
        if (!f->every && !(b0 & 0x80))
            return 0;
    }
    if (!le->ready && prepare(le) < 0)
        return -1;
    if (le->used + le->per_line > scratch_cap) {
        size_t cap = scratch_cap ? scratch_cap : 16384;
        char *grown;

        while (cap < le->used + le->per_line)
            cap *= 2;
        grown = PyMem_Realloc(scratch, cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        scratch = grown;
        scratch_cap = cap;
    }
    out = scratch + le->used;
    for (i = 0; i < f->npieces; i++) {
        const Piece *p = &f->piece[i];
        const char *text;
        Py_ssize_t n;

        switch (p->kind) {
        case SL_LITERAL:
            text = p->text;
            n = p->len;
            break;
        case SL_OPCODE:
        case SL_PAYLOAD:
        case SL_MESSAGE:
            text = decimal(num + 24, p->kind == SL_OPCODE ? op : p->kind == SL_PAYLOAD ? len : message);
            n = num + 24 - text;
            break;
        case SL_OPNAME: /* opnames.get(opcode) or str(opcode) */
            if (OPNAMES[op] != NULL) {
                text = OPNAMES[op];
                n = OPNAME_LEN[op];
            }
            else {
                text = decimal(num + 24, op);
                n = num + 24 - text;
            }
            break;
        default:
            text = le->val[p->kind];
            n = le->vlen[p->kind];
        }
        memcpy(out, text, (size_t)n);
        out += n;
    }
    *out++ = '\n';
    le->used = (size_t)(out - scratch);
    return 0;
}

static PyObject *
LineFormat_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"pieces", "source", "every", "opened_at", "http_date", "iso8601", "msec", NULL};
    PyObject *pieces, *source, *clock[3];
    int every;
    double opened_at;
    Py_ssize_t i, n;
    unsigned int used = 0; /* bit k: slot k is in the line */
    LineFormat *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!pdOOO:LineFormat", kwlist, &PyTuple_Type, &pieces,
                                     &PyBytes_Type, &source, &every, &opened_at, &clock[0], &clock[1],
                                     &clock[2]))
        return NULL;
    n = PyTuple_GET_SIZE(pieces);
    self = (LineFormat *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->pieces = Py_NewRef(pieces);
    self->source = Py_NewRef(source);
    for (i = 0; i < 3; i++)
        self->clock[i] = Py_NewRef(clock[i]);
    self->every = every;
    self->opened_at = opened_at;
    self->piece = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Piece));
    if (self->piece == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->npieces = n;
    for (i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(pieces, i);
        Piece *p = &self->piece[i];

        if (PyBytes_Check(item)) {
            p->kind = SL_LITERAL;
            p->text = PyBytes_AS_STRING(item);
            p->len = PyBytes_GET_SIZE(item);
            self->fixed += p->len;
            continue;
        }
        p->kind = (int)PyLong_AsLong(item);
        if (p->kind == -1 && PyErr_Occurred()) {
            Py_DECREF(self);
            return NULL;
        }
        if (p->kind < 0 || p->kind >= N_SLOTS ||
            (p->kind >= FIRST_CLOCK && self->clock[p->kind - FIRST_CLOCK] == Py_None)) {
            Py_DECREF(self);
            PyErr_Format(PyExc_ValueError, "piece %zd: no slot %d (or no clock for it)", i, p->kind);
            return NULL;
        }
        used |= 1u << p->kind;
    }
    for (i = 0; i < 3; i++) /* a clock no piece uses is not called */
        if (!(used & (1u << (FIRST_CLOCK + i))))
            Py_SETREF(self->clock[i], Py_NewRef(Py_None));
    return (PyObject *)self;
}

static int
LineFormat_traverse(LineFormat *self, visitproc visit, void *arg)
{
    int i;

    for (i = 0; i < 3; i++)
        Py_VISIT(self->clock[i]);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int
LineFormat_clear(LineFormat *self)
{
    int i;

    for (i = 0; i < 3; i++)
        Py_CLEAR(self->clock[i]);
    return 0;
}

static void
LineFormat_dealloc(LineFormat *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    LineFormat_clear(self);
    Py_CLEAR(self->pieces);
    Py_CLEAR(self->source);
    PyMem_Free(self->piece);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

PyDoc_STRVAR(LineFormat_doc,
"LineFormat(pieces, source, every, opened_at, http_date, iso8601, msec)\n--\n\n"
"One direction's ws_log line, for FrameTracker.log(): pieces are bytes\n"
"(literal, already encoded) and slot codes (wslog.C_SLOTS); every: a line\n"
"per frame, else per data message; the three clock functions (or None)\n"
"give the time slots' text for a read's time.");

static PyType_Slot LineFormat_slots[] = {
    {Py_tp_doc, (void *)LineFormat_doc},
    {Py_tp_new, LineFormat_new},
    {Py_tp_dealloc, LineFormat_dealloc},
    {Py_tp_traverse, LineFormat_traverse},
    {Py_tp_clear, LineFormat_clear},
    {0, NULL},
};

static PyType_Spec LineFormat_spec = {
    .name = "ngxws.ws._speedups.LineFormat",
    .basicsize = sizeof(LineFormat),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = LineFormat_slots,
};

PyDoc_STRVAR(log_doc,
"log(data, fmt, now, /)\n--\n\n"
"count(data) that also renders fmt's line for each frame completed in it\n"
"(fmt None: none), at time.time() now; returns (lines, frames, payload):\n"
"the lines as bytes, each ending in a newline.");

static PyObject *
FrameTracker_log(FrameTracker *self, PyObject *const *args, Py_ssize_t nargs)
{
    LogEmit le;
    Py_buffer view;
    uint64_t frames = 0, payload = 0;
    int rc, i;
    PyObject *lines;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "log() takes data, fmt, now");
        return NULL;
    }
    if (args[1] != Py_None && !Py_IS_TYPE(args[1], LineFormatType)) {
        PyErr_SetString(PyExc_TypeError, "fmt must be a LineFormat or None");
        return NULL;
    }
    memset(&le, 0, sizeof le);
    le.base.frame = log_frame;
    le.fmt = (LineFormat *)args[1];
    le.now = PyFloat_AsDouble(args[2]);
    if (le.now == -1.0 && PyErr_Occurred())
        return NULL;
    view.obj = NULL;
    if (PyBytes_Check(args[0])) { /* the common case, read in place as count() does */
        view.buf = PyBytes_AS_STRING(args[0]);
        view.len = PyBytes_GET_SIZE(args[0]);
    }
    else if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    rc = count_emit(self, (const unsigned char *)view.buf, (size_t)view.len,
                    args[1] == Py_None ? NULL : &le.base, &frames, &payload);
    if (view.obj != NULL)
        PyBuffer_Release(&view);
    for (i = 0; i < N_SLOTS - FIRST_CLOCK; i++)
        Py_XDECREF(le.keep[i]);
    if (rc < 0)
        return NULL;
    lines = PyBytes_FromStringAndSize(scratch, (Py_ssize_t)le.used);
    if (lines == NULL)
        return NULL;
    return Py_BuildValue("(NKK)", lines, (unsigned long long)frames, (unsigned long long)payload);
}
