/*
 * Relay (included by _speedups.c for count_chunk): the transport path's
 * read handler of a side that logs no frames -- a TLS tunnel's, or one
 * not spliced yet.
 */

/*
 * Relay: the read handler of a tunnel side that does not log frames
 * (ngxws.proxy.tunnel._Side._read_unlogged, the same steps without a Python
 * frame): frame scan + counter slot, forward the very same bytes object,
 * and only for a read above `small` bytes or a stream that cannot be
 * followed, call back into Python (`spent(size, lost)`: the turn allowance,
 * the close).  uvloop calls the bound `feed` directly for every read.
 */
typedef struct {
    PyObject_HEAD
    PyObject *tracker;    /* a FrameTracker (count() in C) or any object with count() */
    PyObject *out;        /* the other side's transport: out.write(data) */
    PyObject *spent;      /* called as spent(size, lost) after a large read or a loss */
    PyObject *count_name; /* "count" / "write": method names looked up on the type, */
    PyObject *write_name; /* so no bound method object is kept (or touched) per read */
    Py_ssize_t small;
    int direct;           /* tracker is our FrameTracker: call FrameTracker_count */
} Relay;

static PyObject *
Relay_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"tracker", "out", "spent", "small", NULL};
    PyObject *tracker, *out, *spent, *module, *ft;
    Py_ssize_t small;
    Relay *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOn:Relay", kwlist, &tracker, &out, &spent,
                                     &small))
        return NULL;
    module = PyType_GetModule(type);
    if (module == NULL)
        return NULL;
    ft = PyObject_GetAttrString(module, "FrameTracker");
    if (ft == NULL)
        return NULL;
    self = (Relay *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(ft);
        return NULL;
    }
    self->direct = Py_IS_TYPE(tracker, (PyTypeObject *)ft);
    Py_DECREF(ft);
    self->count_name = PyUnicode_InternFromString("count");
    self->write_name = PyUnicode_InternFromString("write");
    if (self->count_name == NULL || self->write_name == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->tracker = Py_NewRef(tracker);
    self->out = Py_NewRef(out);
    self->spent = Py_NewRef(spent);
    self->small = small;
    return (PyObject *)self;
}

static int
Relay_traverse(Relay *self, visitproc visit, void *arg)
{
    Py_VISIT(self->tracker);
    Py_VISIT(self->out);
    Py_VISIT(self->spent);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int
Relay_clear(Relay *self)
{
    Py_CLEAR(self->tracker);
    Py_CLEAR(self->out);
    Py_CLEAR(self->spent);
    return 0;
}

static void
Relay_dealloc(Relay *self)
{
    PyTypeObject *tp = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    Relay_clear(self);
    Py_CLEAR(self->count_name);
    Py_CLEAR(self->write_name);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

PyDoc_STRVAR(relay_feed_doc,
"feed(data, /)\n--\n\n"
"Count data's frames into the tracker's slot, write it to out, and call\n"
"spent(len(data), lost) if it is longer than small or the stream is lost.");

static PyObject *
Relay_feed(Relay *self, PyObject *data)
{
    PyObject *lost, *r, *args[2];
    Py_ssize_t n;
    int is_lost;

    if (self->tracker == NULL) {
        PyErr_SetString(PyExc_ValueError, "relay cleared");
        return NULL;
    }
    if (self->direct)
        lost = FrameTracker_count((FrameTracker *)self->tracker, data);
    else {
        args[0] = self->tracker;
        args[1] = data;
        lost = PyObject_VectorcallMethod(self->count_name, args,
                                         2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    if (lost == NULL)
        return NULL;
    is_lost = PyObject_IsTrue(lost);
    Py_DECREF(lost);
    if (is_lost < 0)
        return NULL;
    args[0] = self->out;
    args[1] = data;
    r = PyObject_VectorcallMethod(self->write_name, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    n = PyBytes_Check(data) ? PyBytes_GET_SIZE(data) : PyObject_Length(data);
    if (n < 0)
        return NULL;
    if (is_lost || n > self->small)
        return PyObject_CallFunction(self->spent, "nO", n, is_lost ? Py_True : Py_False);
    Py_RETURN_NONE;
}

static PyMethodDef Relay_methods[] = {
    {"feed", (PyCFunction)Relay_feed, METH_O, relay_feed_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(Relay_doc,
"Relay(tracker, out, spent, small)\n--\n\n"
"The unlogged tunnel side's read handler in C (see ngxws.proxy.tunnel).");

static PyType_Slot Relay_slots[] = {
    {Py_tp_doc, (void *)Relay_doc},
    {Py_tp_new, Relay_new},
    {Py_tp_dealloc, Relay_dealloc},
    {Py_tp_traverse, Relay_traverse},
    {Py_tp_clear, Relay_clear},
    {Py_tp_methods, Relay_methods},
    {0, NULL},
};

static PyType_Spec Relay_spec = {
    .name = "ngxws.ws._speedups.Relay",
    .basicsize = sizeof(Relay),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Relay_slots,
};
