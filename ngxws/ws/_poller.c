/*
 * Poller: one epoll set of this worker's own, for the sockets that have no
 * asyncio transport (spliced tunnels, an upgrade's upstream connect: see
 * ngxws.proxy.splice and ngxws.proxy.dial); included by _speedups.c after
 * _splice.c.
 *
 * Why: through the loop's add_reader/add_writer every change of interest
 * on a socket costs a uvloop poll handle, a Handle object and, in libuv,
 * two to four epoll_ctl calls (ADD failing with EEXIST, then MOD; a DEL at
 * each stop): ~25 epoll_ctl per proxied upgrade were measured
 * (bench/PROFILE.md, "W5, round 3"), where nginx makes one per socket
 * (ngx_epoll_add_connection).  Here a socket is registered once, its
 * interest changes with one epoll_ctl only when it really changes, and the
 * loop watches a single descriptor, this set's: one callback per loop turn
 * (run) reads every ready socket and hands each to its target in C -- a
 * Splice's read or drain directly, any other target (a Python callable)
 * with the events that came.
 *
 * Level-triggered, as the loop's own watchers are: a socket that still has
 * data after its share of reads (SPLICE_READS) is reported again in the
 * next turn, so each turn stays bounded.  A registration's number goes into
 * the event (gen): an event of a socket removed, or replaced by a new one
 * of the same number, earlier in the same batch is not delivered.
 */

#include <sys/epoll.h>

#define POLL_READ 1
#define POLL_WRITE 2
#define POLL_BATCH 64

typedef struct {
    PyObject *target; /* a Splice, or a callable(events) */
    uint32_t gen;
    int which;  /* a Splice's socket: 0 client, 1 upstream */
    int events; /* POLL_READ | POLL_WRITE; 0: registered with no interest */
    int in_set; /* added to the epoll set */
} PollEntry;

typedef struct {
    PyObject_HEAD
    int epfd;
    uint32_t gen;
    Py_ssize_t size; /* entries[fd] for 0 <= fd < size */
    PollEntry *entries;
    PyTypeObject *splice_type;
} Poller;

static PyObject *
Poller_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {NULL};
    PyObject *module, *st;
    Poller *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, ":Poller", kwlist))
        return NULL;
    module = PyType_GetModule(type);
    if (module == NULL)
        return NULL;
    st = PyObject_GetAttrString(module, "Splice");
    if (st == NULL)
        return NULL;
    self = (Poller *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(st);
        return NULL;
    }
    self->splice_type = (PyTypeObject *)st;
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (self->epfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
Poller_traverse(Poller *self, visitproc visit, void *arg)
{
    Py_ssize_t i;

    for (i = 0; i < self->size; i++)
        Py_VISIT(self->entries[i].target);
    Py_VISIT(self->splice_type);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int
Poller_clear(Poller *self)
{
    Py_ssize_t i;

    for (i = 0; i < self->size; i++)
        Py_CLEAR(self->entries[i].target);
    Py_CLEAR(self->splice_type);
    return 0;
}

static void
Poller_dealloc(Poller *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    Poller_clear(self);
    PyMem_Free(self->entries);
    if (self->epfd >= 0)
        close(self->epfd);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static uint32_t
poll_mask(int events)
{
    return ((events & POLL_READ) ? (EPOLLIN | EPOLLRDHUP) : 0) | ((events & POLL_WRITE) ? EPOLLOUT : 0);
}

/* Apply entry fd's interest to the epoll set; -1 with an OSError set. */
static int
poller_apply(Poller *self, int fd)
{
    PollEntry *e = &self->entries[fd];
    struct epoll_event ev;
    int op;

    if (e->events == 0) { /* nothing wanted: out of the set (no level-triggered HUP storm) */
        if (e->in_set && epoll_ctl(self->epfd, EPOLL_CTL_DEL, fd, &ev) < 0 && errno != ENOENT &&
            errno != EBADF) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        e->in_set = 0;
        return 0;
    }
    ev.events = poll_mask(e->events);
    ev.data.u64 = ((uint64_t)e->gen << 32) | (uint32_t)fd;
    op = e->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(self->epfd, op, fd, &ev) < 0) {
        if (op == EPOLL_CTL_ADD && errno == EEXIST)
            op = EPOLL_CTL_MOD;
        else if (op == EPOLL_CTL_MOD && errno == ENOENT)
            op = EPOLL_CTL_ADD;
        else {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (epoll_ctl(self->epfd, op, fd, &ev) < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    e->in_set = 1;
    return 0;
}

static PyObject *
Poller_set(Poller *self, PyObject *args)
{
    int fd, events, which = 0;
    PyObject *target;
    PollEntry *e;

    if (!PyArg_ParseTuple(args, "iiO|i:set", &fd, &events, &target, &which))
        return NULL;
    if (fd < 0 || events & ~(POLL_READ | POLL_WRITE)) {
        PyErr_SetString(PyExc_ValueError, "set(fd >= 0, events READ|WRITE, target[, which])");
        return NULL;
    }
    if (fd >= self->size) {
        Py_ssize_t size = self->size ? self->size : 256;
        PollEntry *grown;

        while (size <= fd)
            size *= 2;
        grown = PyMem_Realloc(self->entries, (size_t)size * sizeof(PollEntry));
        if (grown == NULL)
            return PyErr_NoMemory();
        memset(grown + self->size, 0, (size_t)(size - self->size) * sizeof(PollEntry));
        self->entries = grown;
        self->size = size;
    }
    e = &self->entries[fd];
    if (e->target == NULL) /* a new registration: events of an older one are not its */
        e->gen = ++self->gen;
    if (e->target != target) {
        PyObject *old = e->target;

        e->target = Py_NewRef(target);
        Py_XDECREF(old);
    }
    e->which = which;
    if (e->events == events && (e->in_set || events == 0))
        Py_RETURN_NONE; /* the set has it already: no system call */
    e->events = events;
    if (poller_apply(self, fd) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* Drop fd's registration; ``apply``: take it out of the epoll set too. */
static PyObject *
poller_drop(Poller *self, PyObject *arg, int apply)
{
    long v = PyLong_AsLong(arg);
    int fd = (int)v;
    PollEntry *e;
    PyObject *old;

    if (v == -1 && PyErr_Occurred())
        return NULL;
    if (v != fd)
        Py_RETURN_NONE;
    if (fd < 0 || fd >= self->size || self->entries[fd].target == NULL)
        Py_RETURN_NONE;
    e = &self->entries[fd];
    e->events = 0;
    if (!apply)
        e->in_set = 0;
    else if (poller_apply(self, fd) < 0)
        PyErr_Clear(); /* the socket is being closed: its close takes it out anyway */
    old = e->target;
    e->target = NULL;
    Py_DECREF(old);
    Py_RETURN_NONE;
}

static PyObject *
Poller_remove(Poller *self, PyObject *arg)
{
    return poller_drop(self, arg, 1);
}

/* Without the epoll_ctl: the close of the socket's last descriptor, which
 * the caller makes before the loop runs again, takes it out of the set
 * (epoll(7)).  Should another descriptor of it still be open, its events
 * carry this registration's number (gen), which no new one has: skipped. */
static PyObject *
Poller_forget(Poller *self, PyObject *arg)
{
    return poller_drop(self, arg, 0);
}

/* One ready socket to its target; -1 with an exception set. */
static int
poller_dispatch(Poller *self, int fd, uint32_t revents)
{
    PollEntry *e = &self->entries[fd];
    PyObject *target = e->target, *r = NULL;
    int events = e->events, which = e->which, rc = 0;
    int readable = (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    int writable = (revents & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;

    if ((revents & (EPOLLHUP | EPOLLERR)) && !(events & POLL_READ) && !(events & POLL_WRITE))
        return 0; /* not watched (taken out of the set already) */
    Py_INCREF(target); /* its handler may remove it */
    if (Py_IS_TYPE(target, self->splice_type)) {
        Splice *s = (Splice *)target;

        if (readable && (events & POLL_READ)) {
            r = splice_read(s, which);
            if (r == NULL)
                rc = -1;
            Py_XDECREF(r);
        }
        /* writable: what the other direction holds for this socket */
        if (rc == 0 && writable && (events & POLL_WRITE) && fd < self->size &&
            self->entries[fd].target == target && (self->entries[fd].events & POLL_WRITE)) {
            r = splice_drain(s, 1 - which);
            if (r == NULL)
                rc = -1;
            Py_XDECREF(r);
        }
    } else {
        int got = (readable && (events & POLL_READ) ? POLL_READ : 0) |
                  (writable && (events & POLL_WRITE) ? POLL_WRITE : 0);

        if (got) {
            r = PyObject_CallFunction(target, "i", got);
            if (r == NULL)
                rc = -1;
            Py_XDECREF(r);
        }
    }
    Py_DECREF(target);
    return rc;
}

static PyObject *
Poller_run(Poller *self, PyObject *Py_UNUSED(ignored))
{
    struct epoll_event evs[POLL_BATCH];
    int n, i;

    do
        n = epoll_wait(self->epfd, evs, POLL_BATCH, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    for (i = 0; i < n; i++) {
        int fd = (int)(uint32_t)evs[i].data.u64;
        uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);

        if (fd >= self->size || self->entries[fd].target == NULL || self->entries[fd].gen != gen)
            continue; /* removed (or its number taken again) earlier in this batch */
        if (poller_dispatch(self, fd, evs[i].events) < 0)
            return NULL; /* the loop reports it; the rest are reported again (level-triggered) */
    }
    Py_RETURN_NONE;
}

static PyObject *
Poller_get_fd(Poller *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(self->epfd);
}

static PyObject *
Poller_get_watched(Poller *self, void *Py_UNUSED(closure))
{
    Py_ssize_t i, n = 0;

    for (i = 0; i < self->size; i++)
        n += self->entries[i].target != NULL;
    return PyLong_FromSsize_t(n);
}

static PyMethodDef Poller_methods[] = {
    {"set", (PyCFunction)Poller_set, METH_VARARGS,
     "set(fd, events, target, which=0): watch fd for READ|WRITE (0: registered, not watched);\n"
     "a Splice target reads (READ) or drains (WRITE) its socket `which`, a callable gets events."},
    {"remove", (PyCFunction)Poller_remove, METH_O, "remove(fd): watch fd no more (before it is closed)."},
    {"forget", (PyCFunction)Poller_forget, METH_O,
     "forget(fd): remove(fd) without the system call, for a socket whose last descriptor is closed next."},
    {"run", (PyCFunction)Poller_run, METH_NOARGS,
     "The set's descriptor is readable: hand every ready socket to its target."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Poller_getset[] = {
    {"fd", (getter)Poller_get_fd, NULL, "The epoll set's descriptor (the loop watches it).", NULL},
    {"watched", (getter)Poller_get_watched, NULL, "How many sockets are registered.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Poller_slots[] = {
    {Py_tp_doc, "Poller()\n--\n\nThis worker's own epoll set for the sockets without a transport."},
    {Py_tp_new, Poller_new},
    {Py_tp_dealloc, Poller_dealloc},
    {Py_tp_traverse, Poller_traverse},
    {Py_tp_clear, Poller_clear},
    {Py_tp_methods, Poller_methods},
    {Py_tp_getset, Poller_getset},
    {0, NULL},
};

static PyType_Spec Poller_spec = {
    .name = "ngxws.ws._speedups.Poller",
    .basicsize = sizeof(Poller),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Poller_slots,
};

static int
poller_constants(PyObject *module)
{
    if (PyModule_AddIntConstant(module, "POLL_READ", POLL_READ) < 0)
        return -1;
    return PyModule_AddIntConstant(module, "POLL_WRITE", POLL_WRITE);
}
