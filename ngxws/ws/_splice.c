/*
 * Splice: both directions of an unlogged plain-TCP tunnel relayed in C
 * (ngxws.proxy.splice drives it; included by _speedups.c for count_chunk).
 *
 * Why: under uvloop transports every read costs a bytes object, the
 * stream's read callback and the write buffer's bookkeeping -- more user
 * time than nginx's whole relay (bench/PROFILE.md, "Relay, round 2").
 * Here the worker's Poller (_poller.c), or the loop for a steady tunnel,
 * calls splice_read / splice_drain on readiness, as nginx's
 * ngx_http_upstream_process_upgraded runs: one recv() into a pooled buffer,
 * the frame scan + counter slot (count_chunk), one send() to the other
 * socket.  No Python object is made per read.
 *
 * Direction d reads fds[d] and writes fds[1 - d] (0: client -> upstream,
 * 1: upstream -> client).  What send() did not take stays in buf[d]
 * (buf[d][off..len)); the Python side then has the Poller stop reading
 * fds[d] and watch fds[1 - d] for writing (drain) until it is gone: at most one
 * buffer per direction is ever held, the backpressure nginx has with its
 * one buffer per direction.
 *
 * A direction has a buffer only while a read is in hand or bytes are held:
 * it is taken from a small per-process pool of free buffers at a read and
 * given back as soon as the direction holds nothing.  So an idle tunnel --
 * and a tunnel relayed in C from its start (a fresh upgrade) -- holds no
 * buffer at all (bench W6), and a short-lived one (W5) pays no malloc, no
 * page faults and no heap trim for its buffers: the pool's are warm.
 *
 * Python is called (event(kind, n)) only for what is rare: a socket's end
 * or error, a blocked or drained direction, a read that lost the stream
 * (its length cannot be followed), a read that ended at a frame boundary
 * while Python watches for one (a close frame of ours waits).  A read that
 * completed a direction's first close frame calls nothing: the direction
 * whose first close frame came first is noted (first_close), which the
 * tunnel reads when it decides who closed (Tunnel.closed_by, final_closer)
 * -- the W5 connection's two close frames cost no Python call.  Once, after
 * `steady` reads none of which filled its buffer, SPLICE_STEADY: a tunnel of
 * small messages has lived long enough for its sockets to move into the
 * loop's own epoll set (ngxws.proxy.splice).
 */

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define SPLICE_EOF 0      /* n: the socket (0 client, 1 upstream) that ended */
#define SPLICE_ERROR 1    /* n: the socket that failed */
#define SPLICE_BLOCKED 2  /* n: the direction whose send() left bytes */
#define SPLICE_DRAINED 3  /* n: the direction whose held bytes are all sent */
#define SPLICE_NOTICED 4  /* n: the direction whose tracker said "look" */
#define SPLICE_BOUNDARY 5 /* n: the direction (watched) that is between frames */
#define SPLICE_STEADY 6   /* n: the direction whose read made the tunnel steady (once) */

/* Full reads per readiness: at most SPLICE_READS * size bytes per direction
 * per loop turn (libuv's own streams read up to 32 times), so a flood gets
 * fewer loop turns per byte while every socket still gets its turn. */
#define SPLICE_READS 4

/* Free buffers kept for the next reads: one pool per buffer size (the
 * module's BUFFER, and BULK for directions that fill a whole buffer per
 * read).  One process, one thread holding the GIL: no lock. */
#define SPLICE_POOL 64
typedef struct {
    size_t size; /* 0: not used yet */
    int n, max;
    unsigned char *free[SPLICE_POOL];
} SplicePool;

static SplicePool splice_pools[2] = {{0, 0, SPLICE_POOL, {NULL}}, {0, 0, 4, {NULL}}};

static SplicePool *
splice_pool_for(size_t size)
{
    int i;

    for (i = 0; i < 2; i++)
        if (splice_pools[i].size == size)
            return &splice_pools[i];
    for (i = 0; i < 2; i++)
        if (splice_pools[i].size == 0) {
            splice_pools[i].size = size;
            return &splice_pools[i];
        }
    return NULL; /* a third size: malloc and free */
}

static unsigned char *
splice_take(size_t size)
{
    SplicePool *pool = splice_pool_for(size);

    if (pool != NULL && pool->n)
        return pool->free[--pool->n];
    return malloc(size);
}

static void
splice_give(unsigned char *buf, size_t size)
{
    SplicePool *pool;

    if (buf == NULL)
        return;
    pool = splice_pool_for(size);
    if (pool != NULL && pool->n < pool->max)
        pool->free[pool->n++] = buf;
    else
        free(buf);
}

typedef struct {
    PyObject_HEAD
    PyObject *trackers[2]; /* FrameTracker of each direction */
    PyObject *event;       /* event(kind, n) */
    int fds[2];
    int watch[2];          /* report SPLICE_BOUNDARY after a read of this direction */
    size_t off[2], len[2];
    size_t size;           /* a direction's buffer ... */
    size_t bulk;           /* ... and once a read filled it, this (0: never) */
    size_t cap[2];         /* the size of buf[d] while it has one */
    size_t next[2];        /* the size of the next buffer direction d takes */
    unsigned char *buf[2]; /* NULL while the direction holds nothing */
    int first_close;       /* the direction whose first close frame completed first; -1 none yet */
    Py_ssize_t steady;     /* reads (readinesses) left before SPLICE_STEADY; 0: reported, or never
                            * (0 too once a read filled its buffer) */
} Splice;

/* Direction d's buffer, taken from the pool if it has none; 0 out of memory. */
static int
splice_buffer(Splice *self, int d)
{
    if (self->buf[d] == NULL) {
        if ((self->buf[d] = splice_take(self->next[d])) == NULL) {
            PyErr_NoMemory();
            return 0;
        }
        self->cap[d] = self->next[d];
    }
    return 1;
}

/* Direction d holds nothing: its buffer back to the pool. */
static void
splice_release(Splice *self, int d)
{
    if (self->buf[d] != NULL && self->len[d] == self->off[d]) {
        splice_give(self->buf[d], self->cap[d]);
        self->buf[d] = NULL;
        self->off[d] = self->len[d] = 0;
    }
}

static int
splice_event(Splice *self, int kind, int n)
{
    PyObject *r;

    if (self->event == NULL) /* closed */
        return 0;
    r = PyObject_CallFunction(self->event, "ii", kind, n);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

static PyObject *
Splice_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"client", "upstream", "fd_client", "fd_upstream", "event", "size", "bulk", "steady",
                             NULL};
    PyObject *t0, *t1, *event, *module, *ft;
    int f0, f1;
    Py_ssize_t size, bulk = 0, steady = 0;
    Splice *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOiiOn|nn:Splice", kwlist, &t0, &t1, &f0, &f1,
                                     &event, &size, &bulk, &steady))
        return NULL;
    module = PyType_GetModule(type);
    if (module == NULL)
        return NULL;
    ft = PyObject_GetAttrString(module, "FrameTracker");
    if (ft == NULL)
        return NULL;
    if (!Py_IS_TYPE(t0, (PyTypeObject *)ft) || !Py_IS_TYPE(t1, (PyTypeObject *)ft) || size < 1) {
        Py_DECREF(ft);
        PyErr_SetString(PyExc_TypeError, "Splice needs two C FrameTrackers and a size");
        return NULL;
    }
    Py_DECREF(ft);
    self = (Splice *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->size = (size_t)size;
    self->bulk = bulk > size ? (size_t)bulk : 0;
    self->next[0] = self->next[1] = self->size;
    self->trackers[0] = Py_NewRef(t0);
    self->trackers[1] = Py_NewRef(t1);
    self->event = Py_NewRef(event);
    self->fds[0] = f0;
    self->fds[1] = f1;
    self->first_close = -1;
    self->steady = steady > 0 ? steady : 0;
    return (PyObject *)self;
}

static int
Splice_traverse(Splice *self, visitproc visit, void *arg)
{
    Py_VISIT(self->trackers[0]);
    Py_VISIT(self->trackers[1]);
    Py_VISIT(self->event);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int
Splice_clear(Splice *self)
{
    Py_CLEAR(self->trackers[0]);
    Py_CLEAR(self->trackers[1]);
    Py_CLEAR(self->event);
    return 0;
}

static void
Splice_dealloc(Splice *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    Splice_clear(self);
    splice_give(self->buf[0], self->cap[0]);
    splice_give(self->buf[1], self->cap[1]);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* Send what direction d holds; 1 all sent, 0 some left, -1 the peer failed. */
static int
splice_push(Splice *self, int d)
{
    while (self->off[d] < self->len[d]) {
        ssize_t w = send(self->fds[1 - d], self->buf[d] + self->off[d],
                         self->len[d] - self->off[d], MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        self->off[d] += (size_t)w;
    }
    self->off[d] = self->len[d] = 0;
    return 1;
}

static PyObject *
splice_read_some(Splice *self, int d)
{
    ssize_t n;
    int lost, sent, i;

    for (i = 0; i < SPLICE_READS; i++) {
        if (self->fds[d] < 0 || self->len[d]) /* closed, or still draining: wait */
            Py_RETURN_NONE;
        if (!splice_buffer(self, d))
            return NULL;
        do
            n = recv(self->fds[d], self->buf[d], self->cap[d], 0);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                Py_RETURN_NONE;
            return splice_event(self, n == 0 ? SPLICE_EOF : SPLICE_ERROR, d) < 0
                       ? NULL : Py_NewRef(Py_None);
        }
        lost = count_chunk((FrameTracker *)self->trackers[d], self->buf[d], (size_t)n);
        if (lost && !((FrameTracker *)self->trackers[d])->error) {
            /* the direction's first close frame completed: noted, not reported */
            if (self->first_close < 0)
                self->first_close = d;
            lost = 0;
        }
        self->len[d] = (size_t)n;
        sent = splice_push(self, d);
        if (lost || sent != 1 || self->watch[d])
            break; /* rare: Python looks (and may close: no more reads here) */
        if ((size_t)n < self->cap[d])
            Py_RETURN_NONE; /* the socket is drained for now */
        self->steady = 0; /* a full read: a flood or a bulk transfer, never reported steady */
        if (self->bulk > self->cap[d])
            /* a full read: the socket had more.  Bigger reads from the
             * next buffer on (this one goes back once it is sent): one
             * recv and one send per BULK, not per size (W3) */
            self->next[d] = self->bulk;
    }
    if (i == SPLICE_READS)
        Py_RETURN_NONE; /* this turn's share: the loop comes back while readable */
    if (lost && splice_event(self, SPLICE_NOTICED, d) < 0)
        return NULL;
    if (sent < 0)
        return splice_event(self, SPLICE_ERROR, 1 - d) < 0 ? NULL : Py_NewRef(Py_None);
    if (sent == 0 && splice_event(self, SPLICE_BLOCKED, d) < 0)
        return NULL;
    if (self->watch[d] && self->trackers[d] != NULL) {
        FrameTracker *t = (FrameTracker *)self->trackers[d];

        if (!(t->skip || t->head_len || t->error) && splice_event(self, SPLICE_BOUNDARY, d) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
splice_read(Splice *self, int d)
{
    PyObject *r = splice_read_some(self, d);

    splice_release(self, d); /* sent all (or closed meanwhile): no buffer kept */
    if (self->steady && --self->steady == 0 && r != NULL && splice_event(self, SPLICE_STEADY, d) < 0)
        Py_CLEAR(r);
    return r;
}

static PyObject *
splice_drain(Splice *self, int d)
{
    int sent;

    if (self->fds[d] < 0 || self->fds[1 - d] < 0)
        Py_RETURN_NONE;
    sent = splice_push(self, d);
    splice_release(self, d);
    if (sent != 0 && splice_event(self, sent > 0 ? SPLICE_DRAINED : SPLICE_ERROR,
                                  sent > 0 ? d : 1 - d) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Splice_read_client(Splice *self, PyObject *Py_UNUSED(ignored))
{
    return splice_read(self, 0);
}

static PyObject *
Splice_read_upstream(Splice *self, PyObject *Py_UNUSED(ignored))
{
    return splice_read(self, 1);
}

static PyObject *
Splice_drain_client(Splice *self, PyObject *Py_UNUSED(ignored))
{
    return splice_drain(self, 0);
}

static PyObject *
Splice_drain_upstream(Splice *self, PyObject *Py_UNUSED(ignored))
{
    return splice_drain(self, 1);
}

static PyObject *
Splice_write(Splice *self, PyObject *args)
{
    int d;
    Py_buffer data;
    const char *src;
    size_t room, left;
    int sent;

    if (!PyArg_ParseTuple(args, "iy*:write", &d, &data))
        return NULL;
    if (d != 0 && d != 1) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "direction is 0 or 1");
        return NULL;
    }
    if (self->fds[0] < 0 || self->fds[1] < 0) {
        PyBuffer_Release(&data);
        Py_RETURN_FALSE;
    }
    if (self->off[d] && self->off[d] == self->len[d])
        self->off[d] = self->len[d] = 0;
    src = data.buf;
    left = (size_t)data.len;
    if (self->len[d] == 0) { /* nothing held: send from the caller's bytes, keep only the rest */
        const char *p = src;

        while (left) {
            ssize_t w = send(self->fds[1 - d], p, left, MSG_NOSIGNAL);

            if (w < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    left = 0; /* the peer failed: its read reports it */
                break;
            }
            p += w;
            left -= (size_t)w;
        }
        if (left == 0) {
            PyBuffer_Release(&data);
            Py_RETURN_TRUE;
        }
        src = p; /* what is left is held below */
    }
    if (!splice_buffer(self, d)) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (self->off[d]) { /* make room at the end */
        memmove(self->buf[d], self->buf[d] + self->off[d], self->len[d] - self->off[d]);
        self->len[d] -= self->off[d];
        self->off[d] = 0;
    }
    room = self->cap[d] - self->len[d];
    if (left > room) {
        PyBuffer_Release(&data);
        Py_RETURN_FALSE;
    }
    memcpy(self->buf[d] + self->len[d], src, left);
    self->len[d] += left;
    PyBuffer_Release(&data);
    sent = splice_push(self, d);
    splice_release(self, d);
    return PyBool_FromLong(sent > 0);
}

static PyObject *
Splice_close(Splice *self, PyObject *arg)
{
    int flush = PyObject_IsTrue(arg), d;

    if (flush < 0)
        return NULL;
    for (d = 0; d < 2; d++) /* one last try at what is held (the tunnel is closing) */
        if (flush && self->len[d] && self->fds[0] >= 0 && self->fds[1] >= 0)
            splice_push(self, d);
    for (d = 0; d < 2; d++) {
        if (self->fds[d] >= 0) {
            close(self->fds[d]);
            self->fds[d] = -1; /* no call touches a socket number after this */
        }
        splice_give(self->buf[d], self->cap[d]); /* now, not when a collection breaks the event cycle */
        self->buf[d] = NULL;
        self->off[d] = self->len[d] = 0;
    }
    Py_CLEAR(self->event);
    Py_RETURN_NONE;
}

static PyObject *
Splice_watch(Splice *self, PyObject *args)
{
    int d, on;

    if (!PyArg_ParseTuple(args, "ip:watch", &d, &on))
        return NULL;
    if (d != 0 && d != 1) {
        PyErr_SetString(PyExc_ValueError, "direction is 0 or 1");
        return NULL;
    }
    self->watch[d] = on;
    Py_RETURN_NONE;
}

static PyObject *
Splice_get_held(Splice *self, void *Py_UNUSED(closure))
{
    return Py_BuildValue("(nn)", (Py_ssize_t)(self->len[0] - self->off[0]),
                         (Py_ssize_t)(self->len[1] - self->off[1]));
}

static PyMethodDef Splice_methods[] = {
    {"read_client", (PyCFunction)Splice_read_client, METH_NOARGS,
     "Readable client socket: one recv, count, send to the upstream."},
    {"read_upstream", (PyCFunction)Splice_read_upstream, METH_NOARGS,
     "Readable upstream socket: one recv, count, send to the client."},
    {"drain_client", (PyCFunction)Splice_drain_client, METH_NOARGS,
     "Writable upstream socket: send what direction 0 holds."},
    {"drain_upstream", (PyCFunction)Splice_drain_upstream, METH_NOARGS,
     "Writable client socket: send what direction 1 holds."},
    {"write", (PyCFunction)Splice_write, METH_VARARGS,
     "write(direction, data): queue data after what the direction holds and try to send;\n"
     "True when all is sent, False when some is held (or it did not fit)."},
    {"close", (PyCFunction)Splice_close, METH_O,
     "close(flush): send what is held once more if flush, then close both sockets."},
    {"watch", (PyCFunction)Splice_watch, METH_VARARGS,
     "watch(direction, on): report each read of it that ends between two frames."},
    {NULL, NULL, 0, NULL},
};

static PyObject *
Splice_get_sizes(Splice *self, void *Py_UNUSED(closure))
{
    return Py_BuildValue("(nn)", (Py_ssize_t)self->next[0], (Py_ssize_t)self->next[1]);
}

static PyObject *
Splice_get_first_close(Splice *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(self->first_close);
}

static PyGetSetDef Splice_getset[] = {
    {"first_close", (getter)Splice_get_first_close, NULL,
     "The direction (0 client, 1 upstream) whose first close frame a read here completed first; -1 none.", NULL},
    {"held", (getter)Splice_get_held, NULL, "Bytes read but not yet sent, per direction.", NULL},
    {"sizes", (getter)Splice_get_sizes, NULL, "The size of each direction's next read buffer.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Splice_slots[] = {
    {Py_tp_doc, "Splice(client, upstream, fd_client, fd_upstream, event, size, bulk=0, steady=0)\n--\n\n"
                "Both directions of an unlogged plain tunnel in C (see ngxws.proxy.splice);\n"
                "steady: report SPLICE_STEADY once after that many reads, unless one filled its buffer (0: never)."},
    {Py_tp_new, Splice_new},
    {Py_tp_dealloc, Splice_dealloc},
    {Py_tp_traverse, Splice_traverse},
    {Py_tp_clear, Splice_clear},
    {Py_tp_methods, Splice_methods},
    {Py_tp_getset, Splice_getset},
    {0, NULL},
};

static PyType_Spec Splice_spec = {
    .name = "ngxws.ws._speedups.Splice",
    .basicsize = sizeof(Splice),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Splice_slots,
};
