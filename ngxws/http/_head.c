/*
 * scan_head(): ngxws.http.fast_head.py_scan_head in C -- a whole request
 * head of the common shape (an origin-form request line of HTTP/1.0 or 1.1,
 * header lines of token names and values without NUL, the empty line) read
 * in one call, with its header pairs and the index of lower-cased names.
 *
 * It reads exactly the heads fast_head's regexes accept (which are the lines
 * the parser's ports of ngx_http_parse_request_line / _header_line accept
 * whole) and answers None for anything else, as the Python version does;
 * tests/test_fast_head.py compares the two over a corpus.  No judgement of
 * nginx's is made here: fast_head.read_head makes them on what this returns.
 *
 * Only the public CPython C API of 3.10+ is used; the GIL is held throughout.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

/* [A-Za-z0-9-]: a header name byte the fast shape takes */
static int
is_token(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* One header line at b[p..n): its name [*n0, *n1), value [*v0, *v1) with
 * the spaces around it cut; returns the index after its LF, or -1. */
static Py_ssize_t
header_line(const unsigned char *b, Py_ssize_t p, Py_ssize_t n, Py_ssize_t *n0, Py_ssize_t *n1, Py_ssize_t *v0,
            Py_ssize_t *v1)
{
    Py_ssize_t s, e;

    *n0 = p;
    while (p < n && is_token(b[p]))
        p++;
    if (p == *n0 || p >= n || b[p] != ':')
        return -1;
    *n1 = p++;
    s = p;
    while (p < n && b[p] != 0 && b[p] != '\r' && b[p] != '\n')
        p++;
    if (p >= n || b[p] == 0)
        return -1;
    e = p;
    if (b[p] == '\r') {
        p++;
        if (p >= n || b[p] != '\n')
            return -1;
    }
    while (s < e && b[s] == ' ')
        s++;
    while (e > s && b[e - 1] == ' ')
        e--;
    *v0 = s;
    *v1 = e;
    return p + 1;
}

/* The name lower-cased (ASCII: the name is tokens only); the name itself
 * when it has no capital. */
static PyObject *
lower_name(PyObject *name, const unsigned char *b, Py_ssize_t len)
{
    PyObject *low;
    Py_UCS1 *d;
    Py_ssize_t i;

    for (i = 0; i < len && !(b[i] >= 'A' && b[i] <= 'Z'); i++)
        ;
    if (i == len) {
        Py_INCREF(name);
        return name;
    }
    low = PyUnicode_New(len, 127);
    if (low == NULL)
        return NULL;
    d = PyUnicode_1BYTE_DATA(low);
    for (i = 0; i < len; i++)
        d[i] = (b[i] >= 'A' && b[i] <= 'Z') ? (Py_UCS1)(b[i] + 32) : b[i];
    return low;
}

PyDoc_STRVAR(scan_head_doc,
"scan_head(buf, pos, /)\n--\n\n"
"The request head at buf[pos:] when it has the common shape: (method, target,\n"
"HTTP/1.1?, [(name, value)...], {lower-cased name: value}, index after it);\n"
"None otherwise, or when a name comes twice.  fast_head.py_scan_head in C.");

static PyObject *
scan_head(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *b;
    Py_ssize_t n, pos, p, m1, t0, t1, end, lines = 0, i;
    Py_ssize_t n0, n1, v0, v1;
    int http11;
    PyObject *headers = NULL, *index = NULL, *method = NULL, *target = NULL, *result = NULL;

    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "scan_head(buf: bytes, pos: int)");
        return NULL;
    }
    b = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    n = PyBytes_GET_SIZE(args[0]);
    pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    if (pos < 0 || pos > n) {
        PyErr_SetString(PyExc_ValueError, "scan_head: pos out of the buffer");
        return NULL;
    }

    /* the request line: [A-Z]+ " /" [!-~\x80-\xff]* " HTTP/1." [01] \r? \n */
    p = pos;
    while (p < n && b[p] >= 'A' && b[p] <= 'Z')
        p++;
    if (p == pos || p + 1 >= n || b[p] != ' ' || b[p + 1] != '/')
        Py_RETURN_NONE;
    m1 = p++;
    t0 = p;
    while (p < n && ((b[p] >= 0x21 && b[p] <= 0x7e) || b[p] >= 0x80))
        p++;
    t1 = p;
    if (n - p < 9 || memcmp(b + p, " HTTP/1.", 8) != 0 || (b[p + 8] != '0' && b[p + 8] != '1'))
        Py_RETURN_NONE;
    http11 = b[p + 8] == '1';
    p += 9;
    if (p < n && b[p] == '\r')
        p++;
    if (p >= n || b[p] != '\n')
        Py_RETURN_NONE;
    p++;

    /* header lines up to the empty one: checked and counted first */
    i = p;
    for (;;) {
        if (i < n && b[i] == '\n') {
            end = i + 1;
            break;
        }
        if (i + 1 < n && b[i] == '\r' && b[i + 1] == '\n') {
            end = i + 2;
            break;
        }
        i = header_line(b, i, n, &n0, &n1, &v0, &v1);
        if (i < 0)
            Py_RETURN_NONE; /* not this shape, or not complete yet */
        lines++;
    }

    headers = PyList_New(lines);
    index = PyDict_New();
    if (headers == NULL || index == NULL)
        goto error;
    for (i = 0; i < lines; i++) {
        PyObject *name, *low, *value, *pair;
        int seen;

        p = header_line(b, p, n, &n0, &n1, &v0, &v1);
        name = PyUnicode_DecodeLatin1((const char *)b + n0, n1 - n0, NULL);
        if (name == NULL)
            goto error;
        value = PyUnicode_DecodeLatin1((const char *)b + v0, v1 - v0, NULL);
        if (value == NULL) {
            Py_DECREF(name);
            goto error;
        }
        pair = PyTuple_Pack(2, name, value);
        low = pair == NULL ? NULL : lower_name(name, b + n0, n1 - n0);
        Py_DECREF(name);
        if (low == NULL) {
            Py_XDECREF(pair);
            Py_DECREF(value);
            goto error;
        }
        PyList_SET_ITEM(headers, i, pair); /* steals pair */
        seen = PyDict_Contains(index, low);
        if (seen == 0)
            seen = PyDict_SetItem(index, low, value) < 0 ? -1 : 0;
        else if (seen > 0)
            seen = 1;
        Py_DECREF(low);
        Py_DECREF(value);
        if (seen < 0)
            goto error;
        if (seen) { /* a name twice: the line walk judges it */
            Py_DECREF(headers);
            Py_DECREF(index);
            Py_RETURN_NONE;
        }
    }

    method = PyUnicode_DecodeLatin1((const char *)b + pos, m1 - pos, NULL);
    target = PyUnicode_DecodeLatin1((const char *)b + t0, t1 - t0, NULL);
    if (method == NULL || target == NULL)
        goto error;
    result = Py_BuildValue("(NNONNn)", method, target, http11 ? Py_True : Py_False, headers, index, end);
    return result; /* "N": the new references are the tuple's */

error:
    Py_XDECREF(method);
    Py_XDECREF(target);
    Py_XDECREF(headers);
    Py_XDECREF(index);
    return NULL;
}

static PyMethodDef head_methods[] = {
    {"scan_head", (PyCFunction)(void (*)(void))scan_head, METH_FASTCALL, scan_head_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot head_slots[] = {
    {0, NULL},
};

static struct PyModuleDef head_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ngxws.http._head",
    .m_doc = "C speedup for ngxws.http.fast_head (optional; fast_head falls back to its regexes).",
    .m_size = 0,
    .m_methods = head_methods,
    .m_slots = head_slots,
};

PyMODINIT_FUNC
PyInit__head(void)
{
    return PyModuleDef_Init(&head_module);
}
