/*
 * GB18030 text of one- and two-byte characters -> UTF-8, with the GIL released.
 *
 * Chinese channel files are mostly ASCII with a few two-byte characters per line, and CPython's
 * gb18030 codec decodes them byte by byte into a str that is then encoded again. This does the
 * common case in one pass over the bytes. It knows no characters of its own: the caller passes a
 * table built from CPython's codec (reconcile/gb18030.py), one entry per lead/trail byte pair.
 *
 * transcode(data, table, mark=0) -> bytes | None
 *   table: 65536 entries of 4 bytes, indexed by (lead << 8) | trail: up to three UTF-8 bytes,
 *   then their count; a count of 0 marks a pair the table does not hold.
 *   mark: a byte written after every two-byte character (0: none), so that counting characters
 *   of the result counts GB18030 bytes (fixed-width layouts give widths in bytes).
 *   Returns None, having written nothing, at the first byte it cannot take (a pair the table
 *   lacks, a four-byte sequence, a lone lead byte at the end); the caller then uses the codec,
 *   which decides (and names the byte of) anything unusual.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define TABLE_BYTES (65536 * 4)
#define HIGH_BITS 0x8080808080808080ULL

static PyObject *
transcode(PyObject *module, PyObject *args)
{
    Py_buffer source, table;
    int mark = 0;
    if (!PyArg_ParseTuple(args, "y*y*|i:transcode", &source, &table, &mark)) {
        return NULL;
    }
    if (table.len != TABLE_BYTES || mark < 0 || mark > 0x7F) {
        PyBuffer_Release(&source);
        PyBuffer_Release(&table);
        PyErr_SetString(PyExc_ValueError, "the table must hold 65536 entries of 4 bytes; a mark is one ASCII byte");
        return NULL;
    }
    const unsigned char *in = (const unsigned char *)source.buf;
    const unsigned char *entries = (const unsigned char *)table.buf;
    const Py_ssize_t size = source.len;
    /* each two input bytes give at most three output bytes, and a mark */
    PyObject *result = PyBytes_FromStringAndSize(NULL, (mark ? 2 * size : size + size / 2) + 4);
    if (result == NULL) {
        PyBuffer_Release(&source);
        PyBuffer_Release(&table);
        return NULL;
    }
    unsigned char *start = (unsigned char *)PyBytes_AS_STRING(result);
    unsigned char *out = start;
    int complete = 1;

    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t at = 0;
    while (at < size) {
        /* runs of ASCII, eight bytes at a time */
        while (at + 8 <= size) {
            uint64_t word;
            memcpy(&word, in + at, 8);
            if (word & HIGH_BITS) {
                break;
            }
            memcpy(out, &word, 8);
            out += 8;
            at += 8;
        }
        if (at >= size) {
            break;
        }
        const unsigned char byte = in[at];
        if (byte < 0x80) {
            *out++ = byte;
            at += 1;
            continue;
        }
        if (at + 1 >= size) {
            complete = 0;
            break;
        }
        const unsigned char *entry = entries + ((((size_t)byte) << 8) | in[at + 1]) * 4;
        if (entry[3] == 0) {
            complete = 0;
            break;
        }
        out[0] = entry[0];
        out[1] = entry[1];
        out[2] = entry[2];
        out += entry[3];
        if (mark) {
            *out++ = (unsigned char)mark;
        }
        at += 2;
    }
    Py_END_ALLOW_THREADS

    PyBuffer_Release(&source);
    PyBuffer_Release(&table);
    if (!complete) {
        Py_DECREF(result);
        Py_RETURN_NONE;
    }
    if (_PyBytes_Resize(&result, out - start) < 0) {
        return NULL;
    }
    return result;
}

static PyMethodDef methods[] = {
    {"transcode", transcode, METH_VARARGS,
     "transcode(data, table, mark=0) -> bytes | None: GB18030 of one- and two-byte characters to UTF-8."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT, "_gb18030", "GB18030 -> UTF-8 for the common case.", -1, methods,
};

PyMODINIT_FUNC
PyInit__gb18030(void)
{
    return PyModule_Create(&definition);
}
