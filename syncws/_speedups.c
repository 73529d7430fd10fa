/*
 * syncws._speedups: optional compiled helpers for syncws.
 *
 * apply_mask(data, key, /) -> bytes
 *     XOR ``data`` with the 4-byte ``key`` repeated (RFC 6455 section 5.3). Masking and
 *     unmasking are the same operation. ``data`` and ``key`` may be any bytes-like object.
 * client_frame(first_byte, payload, key, /) -> list
 *     A whole masked frame: header, key and masked payload, in one buffer when small.
 * parse_frame(buffer, expect_masked, max_payload, /) -> None | int | (first_byte, payload)
 *     Take the next complete frame off the front of a bytearray (see parse_frame_doc).
 * payload_buffer(size, /) -> (bytes, memoryview)
 *     A new bytes object and a writable view of it, so a socket can fill it in place.
 *
 * The module is optional: syncws.protocol.mask and syncws.protocol._accel fall back to
 * pure-Python versions when it was not compiled, so everything here must behave exactly
 * like those fallbacks (tests/test_accel.py and tests/test_mask.py compare them).
 *
 * Stable ABI: built with Py_LIMITED_API = 3.9 (setup: py_limited_api), so one abi3 wheel
 * serves every CPython >= 3.9. The limited API of 3.9 has no buffer protocol (Py_buffer
 * arrived in 3.11) and no METH_FASTCALL (3.10): bytes and bytearray are read directly,
 * any other bytes-like object is first copied into bytes, and functions take a tuple.
 *
 * Speed: the hot loop works on 64 bytes per iteration with SSE2 when the compiler targets
 * it (always on x86-64), otherwise on 8 bytes at a time with a 64-bit word; unaligned
 * loads and stores go through memcpy, which compilers turn into plain moves. Large inputs
 * are processed with the GIL released.
 */

#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x03090000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64) || defined(_M_AMD64) || \
    (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define SYNCWS_HAVE_SSE2 1
#else
#define SYNCWS_HAVE_SSE2 0
#endif

/* Return a new reference to None. Not Py_RETURN_NONE: the CPython 3.13.0 headers define it
 * as a plain `return Py_None` (None is immortal from 3.12 on) even for the 3.9 limited API,
 * so a module built there would steal a reference to None on every call when run on 3.9-3.11
 * and crash the interpreter ("deallocating None"). */
#define SYNCWS_RETURN_NONE return Py_INCREF(Py_None), Py_None

/* The flag for a writable PyMemoryView_FromMemory(): part of the stable ABI since 3.3 (the
 * function is), but the 3.9 headers declare it only outside the limited API. */
#ifndef PyBUF_WRITE
#define PyBUF_WRITE 0x200
#endif

/* Inputs at least this long are masked with the GIL released. Below it, the cost of
 * dropping and re-taking the GIL is not worth it. */
#define SYNCWS_NOGIL_THRESHOLD ((Py_ssize_t)64 * 1024)

/*
 * XOR n bytes of src with key (repeated from offset 0) into dst.
 * src and dst may be unaligned; they must not overlap partially (they never do here:
 * dst is always a fresh bytes object).
 */
static void
mask_buffer(const unsigned char *src, unsigned char *dst, Py_ssize_t n,
            const unsigned char key[4])
{
    Py_ssize_t i = 0;
    uint32_t key32;
    uint64_t key64;

    /* Build the mask words by copying the key bytes in memory order, so the result is
     * right whatever the machine's byte order. */
    memcpy(&key32, key, 4);
    key64 = ((uint64_t)key32 << 32) | (uint64_t)key32;

#if SYNCWS_HAVE_SSE2
    {
        const __m128i k = _mm_set1_epi32((int)key32);
        for (; i + 64 <= n; i += 64) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
            __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
            _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, k));
            _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, k));
            _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, k));
        }
        for (; i + 16 <= n; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
        }
    }
#else
    for (; i + 32 <= n; i += 32) {
        uint64_t a, b, c, d;
        memcpy(&a, src + i, 8);
        memcpy(&b, src + i + 8, 8);
        memcpy(&c, src + i + 16, 8);
        memcpy(&d, src + i + 24, 8);
        a ^= key64;
        b ^= key64;
        c ^= key64;
        d ^= key64;
        memcpy(dst + i, &a, 8);
        memcpy(dst + i + 8, &b, 8);
        memcpy(dst + i + 16, &c, 8);
        memcpy(dst + i + 24, &d, 8);
    }
#endif
    /* Every step above advances i by a multiple of 4, so the key phase is still 0. */
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= key64;
        memcpy(dst + i, &w, 8);
    }
    for (; i < n; i++) {
        dst[i] = (unsigned char)(src[i] ^ key[i & 3]);
    }
}

/*
 * A read-only pointer to the bytes of a bytes-like object. *owned receives a new reference
 * that keeps the memory alive (release it with Py_DECREF): the object itself for bytes and
 * bytearray, a bytes copy for anything else that supports the buffer protocol (memoryview,
 * array, mmap, ...; strided views are made contiguous). Returns -1 with TypeError set (by
 * memoryview()) for objects that are not bytes-like.
 */
static int
read_bytes(PyObject *obj, PyObject **owned, const unsigned char **data,
           Py_ssize_t *size)
{
    if (PyBytes_Check(obj)) {
        Py_INCREF(obj);
        *owned = obj;
    }
    else if (PyByteArray_Check(obj)) {
        Py_INCREF(obj);
        *owned = obj;
        *data = (const unsigned char *)PyByteArray_AsString(obj);
        *size = PyByteArray_Size(obj);
        return 0;
    }
    else {
        /* memoryview() accepts exactly the objects that support the buffer protocol (not
         * str, int or lists, which bytes() would also take); bytes() of the view copies it
         * into one contiguous block whatever its layout. */
        PyObject *view = PyMemoryView_FromObject(obj), *copy;
        if (view == NULL) {
            return -1;
        }
        copy = PyBytes_FromObject(view);
        Py_DECREF(view);
        if (copy == NULL) {
            return -1;
        }
        *owned = copy;
    }
    {
        char *buf;
        if (PyBytes_AsStringAndSize(*owned, &buf, size) < 0) {
            Py_CLEAR(*owned);
            return -1;
        }
        *data = (const unsigned char *)buf;
    }
    return 0;
}

/*
 * New bytes holding src masked with key. With release_gil, large inputs are masked with the
 * GIL released: only when src is the memory of a bytes object the caller holds a reference
 * to. (A bytearray could be resized, freeing its memory, by another thread meanwhile: the
 * 3.9 stable ABI has no buffer export to pin it.)
 */
static PyObject *
masked_bytes(const unsigned char *src, Py_ssize_t n, const unsigned char key[4],
             int release_gil)
{
    PyObject *result = PyBytes_FromStringAndSize(NULL, n);
    unsigned char *dst;

    if (result == NULL || n == 0) {
        return result;
    }
    dst = (unsigned char *)PyBytes_AsString(result);
    if (release_gil && n >= SYNCWS_NOGIL_THRESHOLD) {
        /* The result is a new object nobody else can see yet. */
        Py_BEGIN_ALLOW_THREADS
        mask_buffer(src, dst, n, key);
        Py_END_ALLOW_THREADS
    }
    else {
        mask_buffer(src, dst, n, key);
    }
    return result;
}

/* The 4-byte key of args[index]; -1 with an exception set if it is not one. */
static int
get_key(PyObject *obj, unsigned char key[4])
{
    PyObject *owned;
    const unsigned char *data;
    Py_ssize_t size;

    if (read_bytes(obj, &owned, &data, &size) < 0) {
        return -1;
    }
    if (size != 4) {
        PyErr_Format(PyExc_ValueError, "mask key must be 4 bytes, not %zd", size);
        Py_DECREF(owned);
        return -1;
    }
    memcpy(key, data, 4);
    Py_DECREF(owned);
    return 0;
}

/* Data to mask, as read_bytes; *immutable tells whether it is a bytes object. */
static int
get_data(PyObject *obj, PyObject **owned, const unsigned char **data, Py_ssize_t *size,
         int *immutable)
{
    if (read_bytes(obj, owned, data, size) < 0) {
        return -1;
    }
    *immutable = PyBytes_Check(*owned);
    return 0;
}

static int
check_nargs(const char *name, PyObject *args, Py_ssize_t expected)
{
    Py_ssize_t nargs = PyTuple_Size(args);
    if (nargs < 0) {
        return -1;
    }
    if (nargs != expected) {
        PyErr_Format(PyExc_TypeError, "%s() takes exactly %zd positional arguments (%zd given)",
                     name, expected, nargs);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(apply_mask_doc,
"apply_mask($module, data, key, /)\n"
"--\n"
"\n"
"XOR data with the 4-byte key repeated (RFC 6455 section 5.3) and return new bytes.\n"
"\n"
"data and key may be any bytes-like objects. Raises ValueError when key is not\n"
"exactly 4 bytes long and TypeError when an argument is not bytes-like.");

static PyObject *
apply_mask(PyObject *module, PyObject *args)
{
    unsigned char key[4];
    PyObject *owned, *result;
    const unsigned char *src;
    Py_ssize_t n;
    int immutable;

    (void)module;
    if (check_nargs("apply_mask", args, 2) < 0) {
        return NULL;
    }
    if (get_key(PyTuple_GetItem(args, 1), key) < 0) {
        return NULL;
    }
    if (get_data(PyTuple_GetItem(args, 0), &owned, &src, &n, &immutable) < 0) {
        return NULL;
    }
    result = masked_bytes(src, n, key, immutable);
    Py_DECREF(owned);
    return result;
}

/* Frames whose whole encoding is at most this long go out as one buffer (see client_frame
 * in syncws/protocol/frames.py: small frames are cheaper joined than scattered). */
#define SYNCWS_JOIN_LIMIT 1024

/* Header (without key) for a payload of n bytes; returns its length (2, 4 or 10). */
static Py_ssize_t
build_header(unsigned char *out, unsigned char first, unsigned char mask_bit, Py_ssize_t n)
{
    unsigned long long length = (unsigned long long)n;
    int i;

    out[0] = first;
    if (length < 126) {
        out[1] = (unsigned char)(mask_bit | length);
        return 2;
    }
    if (length < 65536) {
        out[1] = (unsigned char)(mask_bit | 126);
        out[2] = (unsigned char)(length >> 8);
        out[3] = (unsigned char)length;
        return 4;
    }
    out[1] = (unsigned char)(mask_bit | 127);
    for (i = 0; i < 8; i++) {
        out[2 + i] = (unsigned char)(length >> (56 - 8 * i));
    }
    return 10;
}

PyDoc_STRVAR(client_frame_doc,
"client_frame($module, first_byte, payload, key, /)\n"
"--\n"
"\n"
"A masked frame as a list of buffers: [header + key + masked payload] when that is at\n"
"most 1024 bytes, else [header + key, masked payload]; [header + key] for an empty\n"
"payload. first_byte is FIN, RSV bits and opcode; key is the 4-byte mask key.");

static PyObject *
client_frame(PyObject *module, PyObject *args)
{
    unsigned char key[4], header[14];
    PyObject *owned, *list, *item;
    const unsigned char *src;
    Py_ssize_t n, head_len;
    long first;
    int immutable;

    (void)module;
    if (check_nargs("client_frame", args, 3) < 0) {
        return NULL;
    }
    first = PyLong_AsLong(PyTuple_GetItem(args, 0));
    if (first == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (first < 0 || first > 255) {
        PyErr_SetString(PyExc_ValueError, "first_byte must be in range(256)");
        return NULL;
    }
    if (get_key(PyTuple_GetItem(args, 2), key) < 0) {
        return NULL;
    }
    if (get_data(PyTuple_GetItem(args, 1), &owned, &src, &n, &immutable) < 0) {
        return NULL;
    }
    head_len = build_header(header, (unsigned char)first, 0x80, n);
    memcpy(header + head_len, key, 4);
    head_len += 4;
    if (n == 0 || head_len + n <= SYNCWS_JOIN_LIMIT) {
        item = PyBytes_FromStringAndSize(NULL, head_len + n);
        if (item != NULL) {
            unsigned char *dst = (unsigned char *)PyBytes_AsString(item);
            memcpy(dst, header, (size_t)head_len);
            mask_buffer(src, dst + head_len, n, key);
        }
        Py_DECREF(owned);
        if (item == NULL) {
            return NULL;
        }
        list = PyList_New(1);
        if (list == NULL) {
            Py_DECREF(item);
            return NULL;
        }
        PyList_SetItem(list, 0, item);  /* steals the reference */
        return list;
    }
    item = masked_bytes(src, n, key, immutable);
    Py_DECREF(owned);
    if (item == NULL) {
        return NULL;
    }
    list = PyList_New(2);
    if (list == NULL) {
        Py_DECREF(item);
        return NULL;
    }
    PyList_SetItem(list, 1, item);
    item = PyBytes_FromStringAndSize((const char *)header, head_len);
    if (item == NULL) {
        Py_DECREF(list);
        return NULL;
    }
    PyList_SetItem(list, 0, item);
    return list;
}

/* Error codes of parse_frame, shared with syncws/protocol/_accel.py. */
enum {
    PARSE_RESERVED_OPCODE = -1,
    PARSE_FRAGMENTED_CONTROL = -2,
    PARSE_CONTROL_TOO_LONG = -3,
    PARSE_UNEXPECTED_MASK = -4,
    PARSE_MISSING_MASK = -5,
    PARSE_LENGTH_TOP_BIT = -6,
    PARSE_TOO_BIG = -7,
};

PyDoc_STRVAR(parse_frame_doc,
"parse_frame($module, buffer, expect_masked, max_payload, /)\n"
"--\n"
"\n"
"Take the next frame off the front of the bytearray buffer.\n"
"\n"
"Returns None while the frame is incomplete (buffer untouched), a negative int when the\n"
"frame breaks a rule (buffer untouched; the codes are listed in syncws.protocol._accel),\n"
"or (first_byte, payload) after deleting the frame from the buffer; payload is new\n"
"bytes, unmasked. expect_masked: whether frames must be masked (a server) or must not be\n"
"(a client); max_payload: the largest allowed payload length, or -1 for no limit.");

static PyObject *
parse_frame(PyObject *module, PyObject *args)
{
    PyObject *buffer, *payload, *result;
    const unsigned char *buf;
    unsigned long long length;
    Py_ssize_t available, offset, end;
    long long max_payload;
    int expect_masked, masked;
    unsigned char first, opcode, key[4];

    (void)module;
    if (check_nargs("parse_frame", args, 3) < 0) {
        return NULL;
    }
    buffer = PyTuple_GetItem(args, 0);
    if (!PyByteArray_Check(buffer)) {
        PyErr_SetString(PyExc_TypeError, "buffer must be a bytearray");
        return NULL;
    }
    expect_masked = PyObject_IsTrue(PyTuple_GetItem(args, 1));
    if (expect_masked < 0) {
        return NULL;
    }
    max_payload = PyLong_AsLongLong(PyTuple_GetItem(args, 2));
    if (max_payload == -1 && PyErr_Occurred()) {
        return NULL;
    }
    available = PyByteArray_Size(buffer);
    if (available < 2) {
        SYNCWS_RETURN_NONE;
    }
    buf = (const unsigned char *)PyByteArray_AsString(buffer);
    first = buf[0];
    opcode = first & 0x0F;
    masked = (buf[1] & 0x80) != 0;
    length = buf[1] & 0x7F;
    offset = 2;
    if ((opcode > 2 && opcode < 8) || opcode > 10) {
        return PyLong_FromLong(PARSE_RESERVED_OPCODE);
    }
    if (opcode >= 8) {
        if (!(first & 0x80)) {
            return PyLong_FromLong(PARSE_FRAGMENTED_CONTROL);
        }
        if (length > 125) {
            return PyLong_FromLong(PARSE_CONTROL_TOO_LONG);
        }
    }
    if (masked != expect_masked) {
        return PyLong_FromLong(masked ? PARSE_UNEXPECTED_MASK : PARSE_MISSING_MASK);
    }
    if (length == 126) {
        if (available < 4) {
            SYNCWS_RETURN_NONE;
        }
        length = ((unsigned long long)buf[2] << 8) | buf[3];
        offset = 4;
    }
    else if (length == 127) {
        int i;
        if (available < 10) {
            SYNCWS_RETURN_NONE;
        }
        length = 0;
        for (i = 2; i < 10; i++) {
            length = (length << 8) | buf[i];
        }
        offset = 10;
        if (length >> 63) {
            return PyLong_FromLong(PARSE_LENGTH_TOP_BIT);
        }
    }
    if (max_payload >= 0 && length > (unsigned long long)max_payload && opcode < 8) {
        return PyLong_FromLong(PARSE_TOO_BIG);
    }
    if (masked) {
        if (available < offset + 4) {
            SYNCWS_RETURN_NONE;
        }
        memcpy(key, buf + offset, 4);
        offset += 4;
    }
    if (length > (unsigned long long)(available - offset)) {
        SYNCWS_RETURN_NONE;
    }
    end = offset + (Py_ssize_t)length;
    if (masked) {
        payload = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length);
        if (payload != NULL && length > 0) {
            mask_buffer(buf + offset, (unsigned char *)PyBytes_AsString(payload),
                        (Py_ssize_t)length, key);
        }
    }
    else {
        payload = PyBytes_FromStringAndSize((const char *)buf + offset, (Py_ssize_t)length);
    }
    if (payload == NULL) {
        return NULL;
    }
    if (PySequence_DelSlice(buffer, 0, end) < 0) {
        Py_DECREF(payload);
        return NULL;
    }
    result = Py_BuildValue("(iN)", (int)first, payload);  /* N: steals payload */
    return result;
}

PyDoc_STRVAR(payload_buffer_doc,
"payload_buffer($module, size, /)\n"
"--\n"
"\n"
"A new bytes object of size bytes (size >= 2; contents undefined) and a writable\n"
"memoryview of it, so that recv_into() can fill the object handed to the user without\n"
"a second copy. The view does not keep the bytes alive: keep the bytes referenced while\n"
"the view is in use, release the view once the bytes are filled, and never hash or share\n"
"the bytes before that.");

static PyObject *
payload_buffer(PyObject *module, PyObject *args)
{
    PyObject *data, *view;
    Py_ssize_t size;

    (void)module;
    if (check_nargs("payload_buffer", args, 1) < 0) {
        return NULL;
    }
    size = PyLong_AsSsize_t(PyTuple_GetItem(args, 0));
    if (size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (size < 2) {
        /* bytes of length 0 and 1 are shared singletons: never write into those. */
        PyErr_SetString(PyExc_ValueError, "payload_buffer() needs a size of at least 2");
        return NULL;
    }
    data = PyBytes_FromStringAndSize(NULL, size);
    if (data == NULL) {
        return NULL;
    }
    view = PyMemoryView_FromMemory(PyBytes_AsString(data), size, PyBUF_WRITE);
    if (view == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    return Py_BuildValue("(NN)", data, view);
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_VARARGS, apply_mask_doc},
    {"client_frame", (PyCFunction)(void (*)(void))client_frame, METH_VARARGS, client_frame_doc},
    {"parse_frame", (PyCFunction)(void (*)(void))parse_frame, METH_VARARGS, parse_frame_doc},
    {"payload_buffer", (PyCFunction)(void (*)(void))payload_buffer, METH_VARARGS,
     payload_buffer_doc},
    {NULL, NULL, 0, NULL},
};

static int
speedups_exec(PyObject *module)
{
    /* The interface version: syncws/protocol/compiled.py API_VERSION must be the same, and
     * both are raised with every change to what the functions above take or return, so that
     * a module built from another version of this file is not used. */
    if (PyModule_AddIntConstant(module, "API_VERSION", 1) < 0) {
        return -1;
    }
    /* Which hot loop was compiled in; reported by bench/mask_bench.py. */
    return PyModule_AddStringConstant(module, "MASK_IMPLEMENTATION",
                                      SYNCWS_HAVE_SSE2 ? "sse2" : "uint64");
}

/* No Py_mod_multiple_interpreters / Py_mod_gil slots: the 3.9 stable ABI does not know
 * them, and a slot id unknown to the running interpreter makes the import fail. */
static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, (void *)speedups_exec},
    {0, NULL},
};

PyDoc_STRVAR(speedups_doc,
"Optional compiled helpers for syncws; see syncws.protocol.mask and\n"
"syncws.protocol._accel for the pure-Python fallbacks.");

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "syncws._speedups",
    speedups_doc,
    0,
    speedups_methods,
    speedups_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
