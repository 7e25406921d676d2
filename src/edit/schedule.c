#include "edit/schedule.h"

int schedule_rows(int T) { return (T + 1) / 2; }

int schedule_calls(int T) { return T <= 1 ? T : T + 1; }

schedule_slot schedule_slot_at(int T, int row, int call) {
    schedule_slot s = {0, 0, 0, 0, 0, 0};
    if (T < 1 || row < 0 || row >= schedule_rows(T) || call < 0) return s;
    int first = row + 1, second = T - row;
    if (call < first) {
        s.candidate = first;
        s.step = call;
    } else if (second > first && call - first < second) {
        s.candidate = second;
        s.step = call - first;
    } else {
        return s; /* idle */
    }
    s.active = 1;
    s.sched_index = T - s.candidate + s.step;
    s.starts = s.step == 0;
    s.finishes = s.step == s.candidate - 1;
    return s;
}
