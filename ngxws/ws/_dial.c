/*
 * dial(family, host, port): the start of an upgrade's upstream connection
 * (ngxws.proxy.dial), in one call; included by _speedups.c.
 *
 * What ngx_event_connect_peer() does before it waits: a non-blocking socket,
 * TCP_NODELAY (nginx sets it on both sides of an upgraded connection,
 * ngx_http_upstream_upgrade), connect().  Through Python's socket object the
 * same steps were a socket object made and dropped, five method calls and
 * an address tuple parsed, per connection (bench/PROFILE.md, "W5, round 6").
 *
 * Returns (fd, err): err 0 when the connection is up -- connect() said so,
 * or, to a loopback address, the handshake was over when it returned
 * (TCP_INFO's state: the kernel runs a loopback handshake within the call)
 * -- EINPROGRESS while it goes on, any other errno when connect() failed
 * at once (the caller reports it and closes fd).  OSError when no socket
 * could be made (nothing to close).  ``host`` is a literal address of
 * ``family`` (dial.family_of said so).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

PyDoc_STRVAR(dial_doc, "dial(family, host, port, /) -> (fd, err): a non-blocking TCP_NODELAY socket connecting to "
                       "host:port; err 0 (up), EINPROGRESS, or connect()'s errno.");

static int
dial_established(int fd)
{
    struct tcp_info info;
    socklen_t len = sizeof(info);

    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && info.tcpi_state == TCP_ESTABLISHED;
}

static PyObject *
speedups_dial(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *host;
    long family, port;
    int fd, err = 0, one = 1, loopback;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "dial(family, host, port)");
        return NULL;
    }
    family = PyLong_AsLong(args[0]);
    port = PyLong_AsLong(args[2]);
    if ((family == -1 || port == -1) && PyErr_Occurred())
        return NULL;
    host = PyUnicode_AsUTF8(args[1]);
    if (host == NULL)
        return NULL;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "port out of range");
        return NULL;
    }
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;

        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            goto bad_host;
        loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        len = sizeof(*a);
    } else if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            goto bad_host;
        loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
        len = sizeof(*a);
    } else {
        PyErr_SetString(PyExc_ValueError, "family is AF_INET or AF_INET6");
        return NULL;
    }
    fd = socket((int)family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
        err = errno;
        close(fd);
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        err = errno;
        if (err == EINTR) /* a non-blocking connect goes on regardless */
            err = EINPROGRESS;
        if (err == EINPROGRESS && loopback && dial_established(fd))
            err = 0;
    }
    return Py_BuildValue("(ii)", fd, err);

bad_host:
    PyErr_Format(PyExc_ValueError, "not a literal address of its family: %s", host);
    return NULL;
}
