/* ledger.c - a token ledger process (balances map; Mint, Transfer, Balance, Balances, Info).
 *
 * Follows the shape of AO token processes: a Transfer sends a Debit-Notice to the sender and a
 * Credit-Notice to the recipient; an insufficient balance answers with a Transfer-Error message.
 * Only the process Owner (env.Process.Owner) may Mint. A bad Quantity is a Result Error.
 */
#include "aojson.h"

#define ADDR_MAX 96
typedef struct { char addr[ADDR_MAX]; long long bal; int used; } entry_t;

static entry_t *tab;
static size_t tab_cap, tab_n;
static sb_t out;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static entry_t *slot(entry_t *t, size_t cap, const char *a) {
    size_t i = fnv1a(a) & (cap - 1);
    while (t[i].used && strcmp(t[i].addr, a)) i = (i + 1) & (cap - 1);
    return &t[i];
}

static entry_t *account(const char *a, int create) {
    if (!tab) {
        tab_cap = 16;
        tab = calloc(tab_cap, sizeof *tab);
        if (!tab) abort();
    }
    entry_t *e = slot(tab, tab_cap, a);
    if (e->used || !create) return e->used ? e : NULL;
    if ((tab_n + 1) * 10 > tab_cap * 7) {   /* grow at 70% load */
        size_t cap = tab_cap * 2;
        entry_t *t = calloc(cap, sizeof *t);
        if (!t) abort();
        for (size_t i = 0; i < tab_cap; i++)
            if (tab[i].used) *slot(t, cap, tab[i].addr) = tab[i];
        free(tab);
        tab = t;
        tab_cap = cap;
        e = slot(tab, tab_cap, a);
    }
    strcpy(e->addr, a);
    e->used = 1;
    e->bal = 0;
    tab_n++;
    return e;
}

static long long balance(const char *a) {
    entry_t *e = account(a, 0);
    return e ? e->bal : 0;
}

static void notice(const char *target, const char *action, const char *k, const char *v, const char *qty,
                   const char *data) {
    sb_puts(&out, "{\"Target\":");
    sb_str(&out, target);
    sb_puts(&out, ",\"Data\":");
    sb_str(&out, data);
    sb_puts(&out, ",\"Tags\":[");
    sb_tag(&out, "Action", action);
    sb_puts(&out, ",");
    sb_tag(&out, k, v);
    sb_puts(&out, ",");
    sb_tag(&out, "Quantity", qty);
    sb_puts(&out, "]}");
}

static const char *error(const char *text) {
    sb_reset(&out);
    sb_puts(&out, "{\"Error\":");
    sb_str(&out, text);
    sb_puts(&out, "}");
    return out.p;
}

AO_EXPORT("handle") const char *handle(const char *msg, const char *env) {
    char action[64], from[ADDR_MAX], owner[ADDR_MAX], who[ADDR_MAX], qty_s[32], num[32];
    if (js_tag(msg, "Action", action, sizeof action) < 0) action[0] = 0;
    if (js_str(js_get(msg, "From"), from, sizeof from) < 0 && js_str(js_get(msg, "Owner"), from, sizeof from) < 0)
        return error("message has no From");
    sb_reset(&out);
    if (!strcmp(action, "Info")) {
        return "{\"Output\":{\"Name\":\"Test Token\",\"Ticker\":\"AOT\",\"Denomination\":\"0\"}}";
    }
    if (!strcmp(action, "Mint")) {
        if (js_str(js_get(js_get(env, "Process"), "Owner"), owner, sizeof owner) < 0 || strcmp(owner, from))
            return error("only the process owner may mint");
        long long q = js_tag(msg, "Quantity", qty_s, sizeof qty_s) >= 0 ? js_uint(qty_s) : -1;
        if (q <= 0) return error("Quantity must be a positive integer");
        entry_t *e = account(from, 1);
        if (e->bal > (1LL << 62) - q) return error("balance overflow");
        e->bal += q;
        sb_puts(&out, "{\"Output\":");
        sb_str(&out, "minted");
        sb_puts(&out, "}");
        return out.p;
    }
    if (!strcmp(action, "Transfer")) {
        if (js_tag(msg, "Recipient", who, sizeof who) <= 0) return error("Recipient is required");
        long long q = js_tag(msg, "Quantity", qty_s, sizeof qty_s) >= 0 ? js_uint(qty_s) : -1;
        if (q <= 0) return error("Quantity must be a positive integer");
        if (balance(from) < q) {
            sb_puts(&out, "{\"Output\":\"insufficient balance\",\"Messages\":[{\"Target\":");
            sb_str(&out, from);
            sb_puts(&out, ",\"Tags\":[");
            sb_tag(&out, "Action", "Transfer-Error");
            sb_puts(&out, ",");
            sb_tag(&out, "Error", "Insufficient Balance!");
            sb_puts(&out, "]}]}");
            return out.p;
        }
        entry_t *src = account(from, 1);
        src->bal -= q;
        entry_t *dst = account(who, 1);   /* may rehash: do not use src after this */
        if (dst->bal > (1LL << 62) - q) return error("balance overflow");
        dst->bal += q;
        sb_puts(&out, "{\"Output\":\"transferred\",\"Messages\":[");
        notice(from, "Debit-Notice", "Recipient", who, qty_s, "debited");
        sb_puts(&out, ",");
        notice(who, "Credit-Notice", "Sender", from, qty_s, "credited");
        sb_puts(&out, "]}");
        return out.p;
    }
    if (!strcmp(action, "Balance")) {
        if (js_tag(msg, "Target", who, sizeof who) <= 0 && js_tag(msg, "Recipient", who, sizeof who) <= 0)
            strcpy(who, from);
        snprintf(num, sizeof num, "%lld", balance(who));
        sb_puts(&out, "{\"Output\":{\"Account\":");
        sb_str(&out, who);
        sb_puts(&out, ",\"Balance\":");
        sb_str(&out, num);
        sb_puts(&out, "},\"Messages\":[{\"Target\":");
        sb_str(&out, from);
        sb_puts(&out, ",\"Data\":");
        sb_str(&out, num);
        sb_puts(&out, ",\"Tags\":[");
        sb_tag(&out, "Balance", num);
        sb_puts(&out, ",");
        sb_tag(&out, "Ticker", "AOT");
        sb_puts(&out, ",");
        sb_tag(&out, "Account", who);
        sb_puts(&out, "]}]}");
        return out.p;
    }
    if (!strcmp(action, "Balances")) {
        int first = 1;
        sb_puts(&out, "{\"Output\":{");
        for (size_t i = 0; i < tab_cap; i++) {
            if (!tab[i].used) continue;
            if (!first) sb_puts(&out, ",");
            first = 0;
            snprintf(num, sizeof num, "%lld", tab[i].bal);
            sb_str(&out, tab[i].addr);
            sb_puts(&out, ":");
            sb_str(&out, num);
        }
        sb_puts(&out, "}}");
        return out.p;
    }
    return "{\"Output\":\"\"}";
}
