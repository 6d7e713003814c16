/*
 * parse_101(make, data): ngxws.proxy.head101.parse_101 in C (included by
 * _speedups.c).
 *
 * Why: every websocket upgrade reads its upstream's 101 once; the Python
 * reader (one regular expression, then the block lower-cased, searched and
 * split) costs about 3 us a connection, a C scan of the same ~130 bytes a
 * tenth of it (bench W5).
 *
 * The grammar is head101.py's, byte for byte:
 *   "HTTP/1.1 101 " VALUE CRLF *( TOKEN ":" [" "] VALUE CRLF ) CRLF
 * VALUE: printable ASCII (0x20-0x7e), first and last byte not a blank;
 * TOKEN: RFC 9110 tchar.  Then, on the header block (the lines between the
 * status line and the empty line): no "content-length" or
 * "transfer-encoding" anywhere in it (any case), an Upgrade line, every
 * Connection value a plain token list ("a, b,c") and one of them "upgrade"
 * (any case).  Anything else: None (the general reader takes the bytes).
 * Whole: make(reason, [(name, value), ...], leftover), the strings ASCII.
 * tests/test_switch101.py checks it against the Python reader over a table
 * and random mutations; tests/test_head101.py against llhttp.
 */

static int
h101_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+.^_`|~-", c) != NULL;
}

static int
h101_word(unsigned char c) /* a Connection token's byte: [0-9A-Za-z-] */
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

static unsigned char
h101_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* p[0..n) equals the lower-case literal lit, in any case. */
static int
h101_is(const unsigned char *p, Py_ssize_t n, const char *lit)
{
    Py_ssize_t i;

    if ((size_t)n != strlen(lit))
        return 0;
    for (i = 0; i < n; i++)
        if (h101_lower(p[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

/* The lower-case literal lit occurs in p[0..n), in any case. */
static int
h101_has(const unsigned char *p, Py_ssize_t n, const char *lit)
{
    Py_ssize_t m = (Py_ssize_t)strlen(lit), i;

    for (i = 0; i + m <= n; i++)
        if (h101_is(p + i, m, lit))
            return 1;
    return 0;
}

/* The end of a VALUE starting at p[i] and followed by CRLF, or -1. */
static Py_ssize_t
h101_value_end(const unsigned char *p, Py_ssize_t i, Py_ssize_t n)
{
    Py_ssize_t j = i;

    if (j >= n || p[j] < 0x21 || p[j] > 0x7e)
        return -1;
    while (j < n && p[j] >= 0x20 && p[j] <= 0x7e)
        j++;
    if (p[j - 1] == ' ' || j + 1 >= n || p[j] != '\r' || p[j + 1] != '\n')
        return -1;
    return j;
}

/* A Connection value p[0..n): -1 not a plain token list, 1 it names upgrade, 0 it does not. */
static int
h101_connection(const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0, start;
    int upgrade = 0;

    for (;;) {
        start = i;
        while (i < n && h101_word(p[i]))
            i++;
        if (i == start)
            return -1;
        if (h101_is(p + start, i - start, "upgrade"))
            upgrade = 1;
        if (i == n)
            return upgrade;
        if (p[i] != ',')
            return -1;
        i++;
        if (i < n && p[i] == ' ')
            i++;
    }
}

static PyObject *
speedups_parse_101(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *p;
    Py_ssize_t n, i, reason_end, block, end, count = 0, k;
    Py_ssize_t ns, ne, vs, ve;
    int upgrade = 0, connection_upgrade = 0, c;
    PyObject *reason = NULL, *headers = NULL, *leftover = NULL, *result = NULL;

    if (nargs != 2 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "parse_101(make, data: bytes)");
        return NULL;
    }
    p = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    n = PyBytes_GET_SIZE(args[1]);
    if (n < 13 || memcmp(p, "HTTP/1.1 101 ", 13) != 0)
        Py_RETURN_NONE;
    reason_end = h101_value_end(p, 13, n);
    if (reason_end < 0)
        Py_RETURN_NONE;
    block = i = reason_end + 2;
    for (;;) { /* the lines, checked */
        if (i + 1 < n && p[i] == '\r' && p[i + 1] == '\n')
            break;
        ns = i;
        while (i < n && h101_tchar(p[i]))
            i++;
        if (i == ns || i >= n || p[i] != ':')
            Py_RETURN_NONE;
        ne = i++;
        if (i < n && p[i] == ' ')
            i++;
        vs = i;
        ve = h101_value_end(p, vs, n);
        if (ve < 0)
            Py_RETURN_NONE;
        if (h101_is(p + ns, ne - ns, "upgrade"))
            upgrade = 1;
        else if (h101_is(p + ns, ne - ns, "connection")) {
            c = h101_connection(p + vs, ve - vs);
            if (c < 0)
                Py_RETURN_NONE;
            connection_upgrade |= c;
        }
        i = ve + 2;
        count++;
    }
    end = i + 2;
    /* llhttp checks the framing headers even on a 101: leave them to it */
    if (h101_has(p + block, i - block, "content-length") || h101_has(p + block, i - block, "transfer-encoding"))
        Py_RETURN_NONE;
    if (!(upgrade && connection_upgrade)) /* llhttp's upgrade needs both */
        Py_RETURN_NONE;
    reason = PyUnicode_DecodeASCII((const char *)p + 13, reason_end - 13, NULL);
    headers = PyList_New(count);
    leftover = PyBytes_FromStringAndSize((const char *)p + end, n - end);
    if (reason == NULL || headers == NULL || leftover == NULL)
        goto done;
    for (i = block, k = 0; k < count; k++) { /* the lines, taken */
        PyObject *name, *value, *pair;

        ns = i;
        while (p[i] != ':')
            i++;
        ne = i++;
        if (p[i] == ' ')
            i++;
        vs = i;
        while (p[i] != '\r')
            i++;
        ve = i;
        i += 2;
        name = PyUnicode_DecodeASCII((const char *)p + ns, ne - ns, NULL);
        value = name == NULL ? NULL : PyUnicode_DecodeASCII((const char *)p + vs, ve - vs, NULL);
        pair = value == NULL ? NULL : PyTuple_Pack(2, name, value);
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (pair == NULL)
            goto done;
        PyList_SET_ITEM(headers, k, pair);
    }
    result = PyObject_CallFunctionObjArgs(args[0], reason, headers, leftover, NULL);
done:
    Py_XDECREF(reason);
    Py_XDECREF(headers);
    Py_XDECREF(leftover);
    return result;
}

PyDoc_STRVAR(parse_101_doc,
"parse_101(make, data, /)\n--\n\n"
"ngxws.proxy.head101's simple 101 read in C: make(reason, headers, leftover)\n"
"when ``data`` is one, else None.");
