/* frx.data._jpeg_crop: decode one rectangle of a JPEG, as TF's decode_and_crop_jpeg does.
 *
 * libjpeg-turbo (>= 1.5) can skip work outside a window: jpeg_skip_scanlines() entropy-decodes
 * the rows above it without the inverse DCT and colour conversion, jpeg_crop_scanline() restricts
 * those to the columns of the window (widened to the left to an iMCU boundary), and the rows below
 * it are never read. TF's DecodeAndCropJpeg makes exactly these calls with the window as given, so
 * the pixels are TF's, including one detail that differs from "decode the whole image, then crop":
 * with chroma subsampling, libjpeg's fancy upsampling treats the window's right edge, and a left
 * edge that falls on an iMCU boundary, as image edges (tests/data/test_jpeg_crop.py checks both
 * against TF's own output).
 *
 * decode_crop(data, out, top, left, height, width, fast_dct) -> status
 *   data      the JPEG (any bytes-like object)
 *   out       a writable C-contiguous buffer of height * width * 3 bytes, filled with RGB
 *   fast_dct  JDCT_IFAST (TF's default dct_method '') when true, JDCT_ISLOW (INTEGER_ACCURATE) when not
 *   status    0 when `out` holds the window; otherwise nothing is promised about `out` and the caller
 *             decodes the image another way (which reports or refuses it): 1 libjpeg error or warning,
 *             2 not a YCbCr, RGB or greyscale JPEG, 3 window empty or outside the image.
 * The GIL is released while decoding, so host threads decode in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

enum { DECODED = 0, LIBJPEG_FAILED = 1, UNSUPPORTED = 2, OUTSIDE = 3 };

struct error_manager {
  struct jpeg_error_mgr pub;
  jmp_buf escape;
};

/* libjpeg's default error_exit() ends the process; return to decode_window() instead. */
static void on_error(j_common_ptr cinfo) { longjmp(((struct error_manager *)cinfo->err)->escape, 1); }

/* Count warnings (corrupt data that libjpeg papers over) without printing them: the caller then
 * falls back to the full decoder, whose report says what is wrong with the file. */
static void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) cinfo->err->num_warnings++;
}

static int decode_window(const unsigned char *data, unsigned long size, unsigned char *out, JDIMENSION top,
                         JDIMENSION left, JDIMENSION height, JDIMENSION width, int fast_dct) {
  struct jpeg_decompress_struct cinfo;
  struct error_manager errors;
  unsigned char *volatile rows = NULL; /* volatile: read after a longjmp */
  volatile int status = LIBJPEG_FAILED;

  cinfo.err = jpeg_std_error(&errors.pub);
  errors.pub.error_exit = on_error;
  errors.pub.emit_message = on_message;
  cinfo.mem = NULL; /* what jpeg_destroy_decompress() checks if creation itself fails */
  if (setjmp(errors.escape)) goto finish;
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, size);
  jpeg_read_header(&cinfo, TRUE);
  int colour = (cinfo.num_components == 3 && (cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB)) ||
               (cinfo.num_components == 1 && cinfo.jpeg_color_space == JCS_GRAYSCALE);
  if (!colour) {
    status = UNSUPPORTED;
    goto finish;
  }
  if (!height || !width || top + height > cinfo.image_height || left + width > cinfo.image_width ||
      top + height < top || left + width < left) {
    status = OUTSIDE;
    goto finish;
  }
  /* TF's settings for channels=3: RGB out, fancy upsampling on, the DCT it was asked for. */
  cinfo.out_color_space = JCS_RGB;
  cinfo.dct_method = fast_dct ? JDCT_IFAST : JDCT_ISLOW;
  cinfo.do_fancy_upsampling = TRUE;
  jpeg_start_decompress(&cinfo);

  JDIMENSION first_column = left, decoded_width = width;
  if (width < cinfo.output_width) jpeg_crop_scanline(&cinfo, &first_column, &decoded_width);
  if (top && jpeg_skip_scanlines(&cinfo, top) != top) goto finish;

  /* When libjpeg moved the window's left edge, rows come wider than `out`: read them into a small
   * buffer and copy the window's columns; otherwise read straight into `out`. */
  size_t row_bytes = (size_t)decoded_width * 3, out_row_bytes = (size_t)width * 3;
  size_t skip_bytes = (size_t)(left - first_column) * 3;
  int direct = first_column == left && decoded_width == width;
  enum { MAX_ROWS = 16 };
  int batch = cinfo.rec_outbuf_height < MAX_ROWS ? cinfo.rec_outbuf_height : MAX_ROWS;
  if (!direct && !(rows = malloc(row_bytes * batch))) goto finish;
  JSAMPROW pointers[MAX_ROWS];
  for (JDIMENSION done = 0; done < height;) {
    int n = height - done < (JDIMENSION)batch ? (int)(height - done) : batch;
    for (int i = 0; i < n; i++)
      pointers[i] = direct ? out + (done + i) * out_row_bytes : rows + i * row_bytes;
    JDIMENSION read = jpeg_read_scanlines(&cinfo, pointers, n);
    if (!read) goto finish;
    if (!direct)
      for (JDIMENSION i = 0; i < read; i++)
        memcpy(out + (done + i) * out_row_bytes, rows + i * row_bytes + skip_bytes, out_row_bytes);
    done += read;
  }
  status = errors.pub.num_warnings ? LIBJPEG_FAILED : DECODED;
finish:
  free(rows);
  jpeg_destroy_decompress(&cinfo); /* also abandons the rows below the window */
  return status;
}

static PyObject *decode_crop(PyObject *self, PyObject *args) {
  Py_buffer data, out;
  unsigned int top, left, height, width;
  int fast_dct, status;
  if (!PyArg_ParseTuple(args, "y*w*IIIIp", &data, &out, &top, &left, &height, &width, &fast_dct)) return NULL;
  if (!PyBuffer_IsContiguous(&out, 'C') || (size_t)out.len != (size_t)height * width * 3) {
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    PyErr_SetString(PyExc_ValueError, "decode_crop: out must be a C-contiguous buffer of height * width * 3 bytes");
    return NULL;
  }
  Py_BEGIN_ALLOW_THREADS
  status = decode_window(data.buf, (unsigned long)data.len, out.buf, top, left, height, width, fast_dct);
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&data);
  PyBuffer_Release(&out);
  return PyLong_FromLong(status);
}

static PyMethodDef methods[] = {
    {"decode_crop", decode_crop, METH_VARARGS, "decode_crop(data, out, top, left, height, width, fast_dct) -> status"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jpeg_crop",
                                    "Decode one rectangle of a JPEG with libjpeg-turbo (TF's decode_and_crop_jpeg).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__jpeg_crop(void) { return PyModule_Create(&module); }
