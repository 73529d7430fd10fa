/*
 * syncws._speedups: optional compiled helpers for syncws.
 *
 * apply_mask(data, key, /) -> bytes
 *     XOR ``data`` with the 4-byte ``key`` repeated (RFC 6455 section 5.3). Masking and
 *     unmasking are the same operation. ``data`` and ``key`` may be any object that
 *     supports the buffer protocol (bytes, bytearray, memoryview, array, mmap, ...).
 *
 * The module is optional: syncws.protocol.mask falls back to a pure-Python version when it
 * was not compiled, so everything here must behave exactly like that fallback.
 *
 * Speed: the hot loop works on 64 bytes per iteration with SSE2 when the compiler targets
 * it (always on x86-64), otherwise on 8 bytes at a time with a 64-bit word; unaligned
 * loads and stores go through memcpy, which compilers turn into plain moves. Large inputs
 * are processed with the GIL released.
 */

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
 * Get a read-only view of obj. Sets *tmp to a PyMem_Malloc'ed C-contiguous copy when the
 * exporter's memory is not C-contiguous (e.g. memoryview(b)[::2]); otherwise *tmp is NULL
 * and view->buf can be read directly. On failure returns -1 with an exception set and
 * nothing to release.
 */
static int
get_bytes_view(PyObject *obj, const char *what, Py_buffer *view, void **tmp)
{
    *tmp = NULL;
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a bytes-like object, not '%.200s'",
                     what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_FULL_RO) < 0) {
        return -1;
    }
    if (!PyBuffer_IsContiguous(view, 'C')) {
        *tmp = PyMem_Malloc(view->len > 0 ? (size_t)view->len : 1);
        if (*tmp == NULL) {
            PyBuffer_Release(view);
            PyErr_NoMemory();
            return -1;
        }
        if (PyBuffer_ToContiguous(*tmp, view, view->len, 'C') < 0) {
            PyMem_Free(*tmp);
            *tmp = NULL;
            PyBuffer_Release(view);
            return -1;
        }
    }
    return 0;
}

static void
release_bytes_view(Py_buffer *view, void *tmp)
{
    if (tmp != NULL) {
        PyMem_Free(tmp);
    }
    PyBuffer_Release(view);
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
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data_view, key_view;
    void *data_tmp, *key_tmp;
    unsigned char key[4];
    const unsigned char *src;
    PyObject *result;
    Py_ssize_t n;

    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "apply_mask() takes exactly 2 positional arguments (%zd given)",
                     nargs);
        return NULL;
    }

    if (get_bytes_view(args[1], "mask key", &key_view, &key_tmp) < 0) {
        return NULL;
    }
    if (key_view.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask key must be 4 bytes, not %zd", key_view.len);
        release_bytes_view(&key_view, key_tmp);
        return NULL;
    }
    memcpy(key, key_tmp != NULL ? key_tmp : key_view.buf, 4);
    release_bytes_view(&key_view, key_tmp);

    if (get_bytes_view(args[0], "data", &data_view, &data_tmp) < 0) {
        return NULL;
    }
    n = data_view.len;
    src = (const unsigned char *)(data_tmp != NULL ? data_tmp : data_view.buf);

    result = PyBytes_FromStringAndSize(NULL, n);
    if (result == NULL) {
        release_bytes_view(&data_view, data_tmp);
        return NULL;
    }
    if (n > 0) {
        unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(result);
        if (n >= SYNCWS_NOGIL_THRESHOLD) {
            /* Safe without the GIL: the exporter stays pinned by our buffer view (a
             * bytearray cannot be resized while exported), we only read from it, and the
             * result is a new object nobody else can see yet. A concurrent writer to a
             * mutable input can only change which bytes we read, as with any copy. */
            Py_BEGIN_ALLOW_THREADS
            mask_buffer(src, dst, n, key);
            Py_END_ALLOW_THREADS
        }
        else {
            mask_buffer(src, dst, n, key);
        }
    }
    release_bytes_view(&data_view, data_tmp);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, apply_mask_doc},
    {NULL, NULL, 0, NULL},
};

static int
speedups_exec(PyObject *module)
{
    /* Which hot loop was compiled in; reported by bench/mask_bench.py. */
    return PyModule_AddStringConstant(module, "MASK_IMPLEMENTATION",
                                      SYNCWS_HAVE_SSE2 ? "sse2" : "uint64");
}

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, (void *)speedups_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(speedups_doc,
"Optional compiled helpers for syncws; see syncws.protocol.mask for the fallback.");

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
