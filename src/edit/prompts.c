#include "edit/prompts.h"

#include <ctype.h>
#include <string.h>

static int is_word_byte(unsigned char c) { return isalnum(c) || c >= 0x80 || c == '_'; }

long prompt_find_phrase(const char *text, const char *phrase) {
    size_t n = strlen(text), m = strlen(phrase);
    if (m == 0 || m > n) return -1;
    for (size_t i = 0; i + m <= n; i++) {
        if (strncasecmp(text + i, phrase, m) != 0) continue;
        int left_ok = i == 0 || !is_word_byte((unsigned char)text[i - 1]) ||
                      !is_word_byte((unsigned char)phrase[0]);
        int right_ok = i + m == n || !is_word_byte((unsigned char)text[i + m]) ||
                       !is_word_byte((unsigned char)phrase[m - 1]);
        if (left_ok && right_ok) return (long)i;
    }
    return -1;
}

int prompt_count_phrase(const char *text, const char *phrase) {
    int n = 0;
    size_t m = strlen(phrase);
    for (long at = prompt_find_phrase(text, phrase); at >= 0 && m; n++) {
        long next = prompt_find_phrase(text + at + (long)m, phrase);
        at = next < 0 ? -1 : at + (long)m + next;
    }
    return n;
}

int prompt_substitute(const char *source, int n_pairs, const char *const *from,
                      const char *const *to, const int *use, char *out, size_t cap,
                      oir_error *err) {
    enum { MAX_PAIRS = 64 };
    long at[MAX_PAIRS];
    int order[MAX_PAIRS], n_used = 0;
    if (n_pairs > MAX_PAIRS) return oir_fail(err, OIR_E_ARG, "at most %d editing pairs", MAX_PAIRS);
    for (int i = 0; i < n_pairs; i++) {
        if (use && !use[i]) continue;
        at[i] = prompt_find_phrase(source, from[i]);
        if (at[i] < 0)
            return oir_fail(err, OIR_E_ARG,
                            "pair %d: '%s' does not occur as a word in the source prompt \"%s\"; "
                            "give the guided and target prompts explicitly",
                            i + 1, from[i], source);
        int times = prompt_count_phrase(source, from[i]);
        if (times > 1)
            return oir_fail(err, OIR_E_ARG,
                            "pair %d: '%s' occurs %d times as a word in the source prompt \"%s\", so which one "
                            "to replace is ambiguous; give a longer phrase, or the guided and target prompts "
                            "explicitly",
                            i + 1, from[i], times, source);
        /* keep the used pairs sorted by position */
        int j = n_used++;
        while (j > 0 && at[order[j - 1]] > at[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (int j = 1; j < n_used; j++) {
        int a = order[j - 1], b = order[j];
        if (at[a] + (long)strlen(from[a]) > at[b])
            return oir_fail(err, OIR_E_ARG, "pairs '%s' and '%s' overlap in the source prompt", from[a],
                            from[b]);
    }
    size_t len = 0, src_pos = 0;
    for (int j = 0; j <= n_used; j++) {
        size_t stop = j < n_used ? (size_t)at[order[j]] : strlen(source);
        const char *rep = j < n_used ? to[order[j]] : "";
        size_t keep = stop - src_pos, rl = strlen(rep);
        if (len + keep + rl + 1 > cap) return oir_fail(err, OIR_E_ARG, "prompt too long after substitution");
        memcpy(out + len, source + src_pos, keep);
        len += keep;
        memcpy(out + len, rep, rl);
        len += rl;
        src_pos = stop + (j < n_used ? strlen(from[order[j]]) : 0);
    }
    out[len] = '\0';
    return OIR_OK;
}
