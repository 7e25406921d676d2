/* Parallel candidate schedule (DESIGN.md §2.3).
 *
 * Candidate k (k = 1..T) starts from the inversion latent z_k and runs k
 * denoising steps, at scheduler indices T-k, ..., T-1 (timesteps in
 * descending order). With ceil(T/2) rows, row r first runs candidate r+1
 * (calls 0..r), then candidate T-r (calls r+1..T): every row is busy on
 * every one of the T+1 calls and the sum of work is T(T+1)/2 sample-steps,
 * exactly the serial cost. For odd T the middle row has a single candidate
 * and idles for its last calls. */
#ifndef OIR_EDIT_SCHEDULE_H
#define OIR_EDIT_SCHEDULE_H

typedef struct {
    int active;     /* 0: the row idles on this call */
    int candidate;  /* k, 1..T */
    int step;       /* j, 0..k-1: how many steps this candidate has done */
    int sched_index;/* index into the descending timesteps: T - k + j */
    int starts;     /* 1 on the candidate's first call (load z_k) */
    int finishes;   /* 1 on its last call (the row then holds candidate k's z_0) */
} schedule_slot;

int schedule_rows(int T);  /* ceil(T/2) */
int schedule_calls(int T); /* T + 1 (1 when T == 1) */
/* What row r does on call c. */
schedule_slot schedule_slot_at(int T, int row, int call);

#endif
