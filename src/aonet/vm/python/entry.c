/* aonet's CPython process module: the JSON ABI of docs/abi.md around an embedded CPython 3.11.
 *
 * Why so small: all the process logic lives in the frozen Python package `ao` (ao/_runtime.py);
 * this file only boots the interpreter on the first message and passes bytes in and out.
 * The generated frozen_table.c provides the frozen stdlib and the names of the blocked builtins.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

extern const struct _frozen aonet_frozen_modules[];
extern const char *const aonet_blocked_builtins[];

static PyObject *g_entry;      /* ao._runtime.handle(msg: str, env: str) -> str */
static PyObject *g_last;       /* the last result, kept alive until the next call */
static char *g_error;          /* boot failure text, if any */
static struct _inittab g_inittab[128];

/* Copy CPython's builtin-module table without the modules a process must not reach. */
static void filter_inittab(void) {
    size_t n = 0;
    for (struct _inittab *p = PyImport_Inittab; p->name != NULL && n + 1 < 128; p++) {
        int blocked = 0;
        for (const char *const *b = aonet_blocked_builtins; *b != NULL; b++) {
            if (strcmp(*b, p->name) == 0) { blocked = 1; break; }
        }
        if (!blocked) g_inittab[n++] = *p;
    }
    memset(&g_inittab[n], 0, sizeof(g_inittab[n]));
    PyImport_Inittab = g_inittab;
}

static const char *json_error(const char *prefix, const char *text) {
    /* Escape text into a tiny {"Error": "..."} document. */
    size_t cap = strlen(prefix) + 2 * strlen(text) + 64, k = 0;
    free(g_error);
    g_error = malloc(cap);
    if (g_error == NULL) return "{\"Error\":\"out of memory\"}";
    k += (size_t)snprintf(g_error, cap, "{\"Error\":\"%s", prefix);
    for (const char *s = text; *s && k + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { g_error[k++] = '\\'; g_error[k++] = (char)c; }
        else if (c == '\n') { g_error[k++] = '\\'; g_error[k++] = 'n'; }
        else if (c < 0x20) { g_error[k++] = ' '; }
        else g_error[k++] = (char)c;
    }
    snprintf(g_error + k, cap - k, "\"}");
    return g_error;
}

static const char *boot(void) {
    PyStatus st;
    PyConfig config;
    PyImport_FrozenModules = aonet_frozen_modules;
    filter_inittab();
    PyConfig_InitIsolatedConfig(&config);
    config.use_hash_seed = 1;
    config.hash_seed = 0;
    config.site_import = 0;
    config.write_bytecode = 0;
    config.install_signal_handlers = 0;
    config.use_frozen_modules = 1;
    config.module_search_paths_set = 1;
    config.pathconfig_warnings = 0;
    config.user_site_directory = 0;
    config.buffered_stdio = 0;
    config.faulthandler = 0;
    config.tracemalloc = 0;
    config.safe_path = 1;
    st = PyConfig_SetString(&config, &config.program_name, L"python");
    if (!PyStatus_Exception(st)) st = PyConfig_SetString(&config, &config.home, L"/");
    if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st)) return json_error("python boot failed: ", st.err_msg ? st.err_msg : "?");
    PyObject *mod = PyImport_ImportModule("ao._runtime");
    if (mod != NULL) {
        g_entry = PyObject_GetAttrString(mod, "handle");
        Py_DECREF(mod);
    }
    if (g_entry == NULL) {
        PyErr_Print();
        return json_error("python boot failed: ", "cannot load ao._runtime");
    }
    return NULL;
}

__attribute__((export_name("handle")))
const char *handle(const char *msg, const char *env) {
    if (g_entry == NULL) {
        const char *err = boot();
        if (err != NULL) return err;
    }
    Py_CLEAR(g_last);
    PyObject *m = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "surrogatepass");
    PyObject *e = m ? PyUnicode_DecodeUTF8(env, (Py_ssize_t)strlen(env), "surrogatepass") : NULL;
    PyObject *r = (m && e) ? PyObject_CallFunctionObjArgs(g_entry, m, e, NULL) : NULL;
    Py_XDECREF(m);
    Py_XDECREF(e);
    if (r == NULL || !PyUnicode_Check(r)) {
        Py_XDECREF(r);
        PyErr_Clear();
        return "{\"Error\":\"the ao runtime failed without a result (out of memory, or input that is not UTF-8)\"}";
    }
    /* The UTF-8 form is cached inside the str object, which stays alive until the next call. */
    const char *text = PyUnicode_AsUTF8AndSize(r, NULL);
    if (text == NULL) {
        PyErr_Clear();
        PyObject *b = PyUnicode_AsEncodedString(r, "utf-8", "backslashreplace");
        Py_DECREF(r);
        if (b == NULL) {
            PyErr_Clear();
            return "{\"Error\":\"the result could not be encoded as UTF-8\"}";
        }
        g_last = b;
        return PyBytes_AS_STRING(b);
    }
    g_last = r;
    return text;
}
