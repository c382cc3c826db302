/* test_optim.c - optimizers (sgd, adam, adamw, lars, lamb) against double-precision
   reference loops written here from the published update rules; weight-decay exclusion,
   schedules against hand-computed formulas, gradient clipping, gradient accumulation,
   optimizer state save/restore. */
#define SDL_IMPLEMENTATION
#include "sdl_test.h"

#define PI 3.14159265358979323846

/* ---- a small parameter set: w (4, 5) decays, b (5) does not, z (3, 2) starts at zero
   (a zero norm for lars and lamb), s (6) gets a zero gradient on step 0 ---- */
enum { NT = 4, NP = 37 };
static sdl_model *make_pset(uint64_t seed) {
    sdl_model *m = sdl_model_new(seed);
    sdl_tensor_uniform(sdl_model_param(m, "w", sdl_shape2(4, 5), true), -1, 1);
    sdl_tensor_uniform(sdl_model_param(m, "b", sdl_shape1(5), false), -1, 1);
    sdl_model_param(m, "z", sdl_shape2(3, 2), true);
    sdl_tensor_uniform(sdl_model_param(m, "s", sdl_shape1(6), true), -1, 1);
    sdl_model_pack(m);
    return m;
}

/* the gradient of element j (flat index) of tensor i at step s: depends on p so that
   every error carries into later steps */
static double grad_at(int i, int64_t j, double p, int s) {
    if (i == 3 && s == 0) return 0.0;
    return 0.3 * p + 0.5 * sin(0.37 * (double)j + 1.1 * s + 0.2);
}
static void set_grads(sdl_model *m, int s) {
    for (int i = 0; i < m->nparams; i++)
        for (int64_t j = m->param_offset[i]; j < m->param_offset[i + 1]; j++)
            m->grad_data[j] = (float)grad_at(i, j, m->param_data[j], s);
}

/* ---- reference optimizers in double, from the published rules ---- */
typedef struct ref_cfg {
    sdl_optim_kind kind;
    double lr, mu, wd, b1, b2, eps, eta;
    bool nesterov;
} ref_cfg;

typedef struct ref_state { double p[NP], g[NP], m[NP], v[NP]; } ref_state;

static double ref_norm(const double *x, int64_t a, int64_t b) {
    double s = 0;
    for (int64_t j = a; j < b; j++) s += x[j] * x[j];
    return sqrt(s);
}

/* one step t (0-based) over the tensors [off[i], off[i+1]) */
static void ref_step(const ref_cfg *c, ref_state *r, const int64_t *off, const bool *decay, int t) {
    for (int i = 0; i < NT; i++) {
        int64_t a = off[i], b = off[i + 1];
        double wd = decay[i] ? c->wd : 0.0;
        for (int64_t j = a; j < b; j++) r->g[j] = grad_at(i, j, r->p[j], t);
        if (c->kind == SDL_OPTIM_SGD) {
            /* PyTorch SGD: d = g + wd p; buf = d (first), mu buf + d; nesterov d + mu buf */
            for (int64_t j = a; j < b; j++) {
                double d = r->g[j] + wd * r->p[j];
                if (c->mu != 0) {
                    r->m[j] = t == 0 ? d : c->mu * r->m[j] + d;
                    d = c->nesterov ? d + c->mu * r->m[j] : r->m[j];
                }
                r->p[j] -= c->lr * d;
            }
        } else if (c->kind == SDL_OPTIM_ADAM || c->kind == SDL_OPTIM_ADAMW) {
            /* Kingma & Ba with bias correction; adamw: Loshchilov & Hutter's decoupled decay */
            double bc1 = 1 - pow(c->b1, t + 1), bc2 = 1 - pow(c->b2, t + 1);
            for (int64_t j = a; j < b; j++) {
                double g = r->g[j];
                if (c->kind == SDL_OPTIM_ADAMW) r->p[j] -= c->lr * wd * r->p[j];
                else g += wd * r->p[j];
                r->m[j] = c->b1 * r->m[j] + (1 - c->b1) * g;
                r->v[j] = c->b2 * r->v[j] + (1 - c->b2) * g * g;
                double mhat = r->m[j] / bc1, vhat = r->v[j] / bc2;
                r->p[j] -= c->lr * mhat / (sqrt(vhat) + c->eps);
            }
        } else if (c->kind == SDL_OPTIM_LARS) {
            /* local lr = eta ||w|| / (||g|| + wd ||w||); buf = mu buf + local (g + wd w); w -= lr buf */
            double wn = ref_norm(r->p, a, b), gn = ref_norm(r->g, a, b);
            double local = decay[i] && wn > 0 && gn > 0 ? c->eta * wn / (gn + wd * wn) : 1.0;
            for (int64_t j = a; j < b; j++) {
                double d = local * (r->g[j] + wd * r->p[j]);
                r->m[j] = t == 0 ? d : c->mu * r->m[j] + d;
                r->p[j] -= c->lr * r->m[j];
            }
        } else { /* LAMB, You et al. 2019, Algorithm 2 with phi = identity */
            double bc1 = 1 - pow(c->b1, t + 1), bc2 = 1 - pow(c->b2, t + 1), rr[NP];
            for (int64_t j = a; j < b; j++) {
                r->m[j] = c->b1 * r->m[j] + (1 - c->b1) * r->g[j];
                r->v[j] = c->b2 * r->v[j] + (1 - c->b2) * r->g[j] * r->g[j];
                rr[j] = (r->m[j] / bc1) / (sqrt(r->v[j] / bc2) + c->eps) + wd * r->p[j];
            }
            double wn = ref_norm(r->p, a, b), rn = ref_norm(rr, a, b);
            double ratio = decay[i] && wn > 0 && rn > 0 ? wn / rn : 1.0;
            for (int64_t j = a; j < b; j++) r->p[j] -= c->lr * ratio * rr[j];
        }
    }
}

static sdl_optim *make_opt(sdl_model *m, const ref_cfg *c, int accum) {
    sdl_optim_desc d;
    memset(&d, 0, sizeof d);
    d.kind = c->kind;
    d.lr = (float)c->lr;
    d.momentum = (float)c->mu;
    d.weight_decay = (float)c->wd;
    d.nesterov = c->nesterov;
    d.beta1 = (float)c->b1;
    d.beta2 = (float)c->b2;
    d.eps = (float)c->eps;
    d.trust_coef = (float)c->eta;
    d.accum_steps = accum;
    return sdl_optim_new(m, &d);
}

/* runs steps of the optimizer and the reference; returns the worst |p - ref| / (1 + |ref|) */
static double run_vs_ref(const ref_cfg *c, int steps) {
    sdl_model *m = make_pset(3);
    sdl_optim *o = make_opt(m, c, 0);
    if (!o) { printf("  optim_new: %s\n", sdl_last_error()); sdl_model_free(m); return 1e9; }
    ref_state r;
    memset(&r, 0, sizeof r);
    bool decay[NT];
    for (int i = 0; i < NT; i++) decay[i] = m->params[i]->decay;
    for (int j = 0; j < NP; j++) r.p[j] = m->param_data[j];
    double worst = 0;
    for (int t = 0; t < steps; t++) {
        set_grads(m, t);
        sdl_optim_step(o);
        ref_step(c, &r, m->param_offset, decay, t);
        for (int j = 0; j < NP; j++) {
            double e = fabs(m->param_data[j] - r.p[j]) / (1 + fabs(r.p[j]));
            if (e > worst) worst = e;
        }
    }
    printf("  kind %d%s: worst |p - ref| / (1 + |ref|) over %d steps: %.3g\n", (int)c->kind, c->nesterov ? " nesterov" : "", steps, worst);
    sdl_optim_free(o);
    sdl_model_free(m);
    return worst;
}

static const ref_cfg cfg_sgd = {SDL_OPTIM_SGD, 0.1, 0, 0.01, 0, 0, 0, 0, false};
static const ref_cfg cfg_momentum = {SDL_OPTIM_SGD, 0.1, 0.9, 0.05, 0, 0, 0, 0, false};
static const ref_cfg cfg_nesterov = {SDL_OPTIM_SGD, 0.1, 0.9, 0.05, 0, 0, 0, 0, true};
static const ref_cfg cfg_adam = {SDL_OPTIM_ADAM, 0.05, 0, 0.1, 0.5, 0.99, 1e-8, 0, false};
static const ref_cfg cfg_adamw = {SDL_OPTIM_ADAMW, 0.05, 0, 0.1, 0.9, 0.999, 1e-8, 0, false};
static const ref_cfg cfg_lars = {SDL_OPTIM_LARS, 0.5, 0.9, 0.01, 0, 0, 0, 0.02, false};
static const ref_cfg cfg_lamb = {SDL_OPTIM_LAMB, 0.05, 0, 0.1, 0.9, 0.999, 1e-6, 0, false};

static void test_sgd_reference(void) {
    double e0 = run_vs_ref(&cfg_sgd, 6), e1 = run_vs_ref(&cfg_momentum, 6), e2 = run_vs_ref(&cfg_nesterov, 6);
    CHECK(e0 < 1e-6, "plain sgd with L2 decay: worst error %g", e0);
    CHECK(e1 < 1e-6, "sgd momentum: worst error %g", e1);
    CHECK(e2 < 1e-6, "sgd nesterov: worst error %g", e2);
}
static void test_adam_reference(void) {
    double e = run_vs_ref(&cfg_adam, 6);
    CHECK(e < 1e-6, "adam (betas 0.5, 0.99, L2 0.1): worst error %g", e);
}
static void test_adamw_reference(void) {
    double e = run_vs_ref(&cfg_adamw, 6);
    CHECK(e < 1e-6, "adamw: worst error %g", e);
}
static void test_lars_reference(void) {
    double e = run_vs_ref(&cfg_lars, 6);
    CHECK(e < 1e-6, "lars: worst error %g", e);
}
static void test_lamb_reference(void) {
    double e = run_vs_ref(&cfg_lamb, 6);
    CHECK(e < 1e-6, "lamb: worst error %g", e);
}

/* the reference is sharp enough to tell the variants apart */
static void test_reference_discriminates(void) {
    ref_cfg c = cfg_nesterov;
    c.nesterov = false; /* run nesterov's reference against plain momentum */
    sdl_model *m = make_pset(3);
    sdl_optim *o = make_opt(m, &cfg_nesterov, 0);
    ref_state r;
    memset(&r, 0, sizeof r);
    bool decay[NT];
    for (int i = 0; i < NT; i++) decay[i] = m->params[i]->decay;
    for (int j = 0; j < NP; j++) r.p[j] = m->param_data[j];
    for (int t = 0; t < 3; t++) { set_grads(m, t); sdl_optim_step(o); ref_step(&c, &r, m->param_offset, decay, t); }
    double worst = 0;
    for (int j = 0; j < NP; j++) worst = fmax(worst, fabs(m->param_data[j] - r.p[j]));
    CHECK(worst > 1e-3, "nesterov differs from plain momentum: %g", worst);
    sdl_optim_free(o);
    sdl_model_free(m);
}

/* ---- weight decay with zero gradients: weights shrink as the rule says, decay=false
   tensors (the bias) do not move at all ---- */
static void test_decay_exclusion(void) {
    const sdl_optim_kind kinds[5] = {SDL_OPTIM_SGD, SDL_OPTIM_ADAM, SDL_OPTIM_ADAMW, SDL_OPTIM_LARS, SDL_OPTIM_LAMB};
    for (int k = 0; k < 5; k++) {
        sdl_model *m = make_pset(9);
        sdl_optim_desc d;
        memset(&d, 0, sizeof d);
        d.kind = kinds[k];
        d.lr = 0.5f;
        d.weight_decay = 0.1f;
        d.momentum = kinds[k] == SDL_OPTIM_LARS ? 0.9f : 0.0f;
        sdl_optim *o = sdl_optim_new(m, &d);
        float before[NP];
        memcpy(before, m->param_data, sizeof before);
        sdl_model_zero_grad(m);
        sdl_optim_step(o);
        /* expected factor on decaying weights after one step from zero gradients:
           sgd, lars (gradient norm 0: trust 1): 1 - lr wd; adamw: 1 - lr wd;
           adam: g = wd p, first step moves each by -lr sign(p); lamb: r = wd p, trust
           ||p|| / ||wd p||, so p -= lr p */
        int64_t b0 = m->param_offset[1], b1 = m->param_offset[2];
        double worst = 0;
        for (int64_t j = 0; j < NP; j++) {
            if (j >= b0 && j < b1) continue;
            double p = before[j], want;
            if (kinds[k] == SDL_OPTIM_ADAM) want = p == 0 ? 0 : p - 0.5 * (p > 0 ? 1 : -1) * (0.1 * fabs(p)) / (0.1 * fabs(p) + 1e-8);
            else if (kinds[k] == SDL_OPTIM_LAMB) want = p * 0.5;
            else want = p * (1 - 0.05);
            worst = fmax(worst, fabs(m->param_data[j] - want));
        }
        CHECK(worst < 1e-6, "kind %d: decayed weights off by %g", (int)kinds[k], worst);
        CHECK(memcmp(before + b0, m->param_data + b0, sizeof(float) * (size_t)(b1 - b0)) == 0, "kind %d: the bias moved", (int)kinds[k]);
        CHECK(m->param_data[0] != before[0], "kind %d: the weight did not move", (int)kinds[k]);
        sdl_optim_free(o);
        sdl_model_free(m);
    }
}

/* lars and lamb: a decay=false tensor is updated with trust ratio 1 (plain momentum sgd,
   plain adam-with-moments), whatever the trust coefficient */
static void test_trust_exclusion(void) {
    for (int lamb = 0; lamb < 2; lamb++) {
        float bias_after[2][5];
        for (int run = 0; run < 2; run++) {
            sdl_model *m = make_pset(4);
            sdl_optim *o = lamb ? sdl_lamb(m, 0.05f, 0, 0, run ? 0.3f : 0.0f)
                                : sdl_lars(m, 0.1f, 0.9f, run ? 0.3f : 0.0f, run ? 0.5f : 0.001f);
            for (int t = 0; t < 3; t++) { set_grads(m, t); sdl_optim_step(o); }
            memcpy(bias_after[run], m->param_data + m->param_offset[1], sizeof bias_after[run]);
            sdl_optim_free(o);
            sdl_model_free(m);
        }
        CHECK(memcmp(bias_after[0], bias_after[1], sizeof bias_after[0]) == 0, "%s: bias depends on wd or trust_coef", lamb ? "lamb" : "lars");
    }
}

/* ---- defaults and bad arguments ---- */
static void test_defaults_and_errors(void) {
    sdl_model *m = make_pset(1);
    sdl_optim *a = sdl_adam(m, 0, 0, 0, 0);
    CHECK(a && a->lr == 0.001f && a->desc.beta1 == 0.9f && a->desc.beta2 == 0.999f && a->desc.eps == 1e-8f, "adam defaults");
    CHECK(a && a->nstate == 2 && sdl_optim_state_count(a) == 2, "adam has two state slots");
    sdl_optim *l = sdl_lamb(m, 0, 0, 0, 0);
    CHECK(l && l->desc.eps == 1e-6f && l->desc.kind == SDL_OPTIM_LAMB, "lamb eps 1e-6");
    sdl_optim *r = sdl_lars(m, 0, 0.9f, 0, 0);
    CHECK(r && r->lr == 0.01f && r->desc.trust_coef == 0.001f && r->nstate == 1, "lars defaults");
    sdl_optim *s = sdl_sgd(m, 0.1f, 0, 0, false);
    CHECK(s && s->nstate == 0 && sdl_optim_state_name(s, 0) == NULL, "sgd without momentum keeps no state");
    sdl_optim_desc d;
    memset(&d, 0, sizeof d);
    sdl_optim *dd = sdl_optim_new(m, &d);
    CHECK(dd && dd->desc.kind == SDL_OPTIM_SGD && dd->lr == 0.01f, "a zero desc is sgd with lr 0.01");
    CHECK(sdl_sgd(m, -0.1f, 0, 0, false) == NULL && strstr(sdl_last_error(), "lr"), "negative lr: %s", sdl_last_error());
    CHECK(sdl_sgd(m, 0.1f, 0, 0, true) == NULL && strstr(sdl_last_error(), "nesterov"), "nesterov without momentum: %s", sdl_last_error());
    CHECK(sdl_adam(m, 0.1f, 1.0f, 0, 0) == NULL, "beta1 = 1 is refused");
    d.kind = (sdl_optim_kind)42;
    CHECK(sdl_optim_new(m, &d) == NULL && sdl_last_result() == SDL_ERR_ARG, "unknown kind");
    CHECK(sdl_optim_new(NULL, &d) == NULL, "NULL model");
    CHECK(sdl_optim_step(NULL) == SDL_ERR_ARG, "NULL optimizer");
    sdl_optim_free(a); sdl_optim_free(l); sdl_optim_free(r); sdl_optim_free(s); sdl_optim_free(dd);
    sdl_model_free(m);
}

/* ---- schedules against the formulas, at the boundaries ---- */
static int near(double got, double want) { return fabs(got - want) <= 1e-6 * fabs(want) + 1e-12; }

static void test_sched_constant_and_step(void) {
    sdl_sched_desc c;
    memset(&c, 0, sizeof c);
    c.base_lr = 0.3f;
    CHECK(sdl_sched_lr(&c, 0) == 0.3f && sdl_sched_lr(&c, 100000) == 0.3f, "constant");
    sdl_sched_desc s;
    memset(&s, 0, sizeof s);
    s.kind = SDL_SCHED_STEP;
    s.base_lr = 0.1f;
    s.milestones[0] = 80;
    s.milestones[1] = 120;
    const int64_t at[6] = {0, 79, 80, 119, 120, 159};
    const double want[6] = {0.1, 0.1, 0.01, 0.01, 0.001, 0.001};
    for (int i = 0; i < 6; i++) CHECK(near(sdl_sched_lr(&s, at[i]), want[i]), "step decay at %lld: %g, want %g", (long long)at[i], sdl_sched_lr(&s, at[i]), want[i]);
    /* with a 5-step warm-up from 0.1 * base */
    s.warmup = 5;
    s.warmup_start_factor = 0.1f;
    s.gamma = 0.5f;
    const int64_t wat[7] = {0, 1, 4, 5, 6, 80, 120};
    const double wwant[7] = {0.01, 0.1 * (0.1 + 0.9 / 5), 0.1 * (0.1 + 0.9 * 4 / 5), 0.1, 0.1, 0.05, 0.025};
    for (int i = 0; i < 7; i++) CHECK(near(sdl_sched_lr(&s, wat[i]), wwant[i]), "warm-up + step at %lld: %.9g, want %.9g", (long long)wat[i], sdl_sched_lr(&s, wat[i]), wwant[i]);
}

static void test_sched_cosine(void) {
    sdl_sched_desc s;
    memset(&s, 0, sizeof s);
    s.kind = SDL_SCHED_COSINE;
    s.base_lr = 1.0f;
    s.min_lr = 0.1f;
    s.total = 100;
    s.warmup = 10; /* from 0 */
    const int64_t at[8] = {0, 5, 9, 10, 55, 70, 100, 150};
    double want[8] = {0, 0.5, 0.9, 1.0, 0.55, 0, 0.1, 0.1};
    want[5] = 0.1 + 0.9 * (1 + cos(PI * 60.0 / 90.0)) / 2;
    for (int i = 0; i < 8; i++) CHECK(near(sdl_sched_lr(&s, at[i]), want[i]), "cosine at %lld: %.9g, want %.9g", (long long)at[i], sdl_sched_lr(&s, at[i]), want[i]);
    s.warmup = 0;
    CHECK(near(sdl_sched_lr(&s, 25), 0.1 + 0.9 * (1 + cos(PI * 0.25)) / 2), "cosine without warm-up at 25");
}

static void test_sched_one_cycle(void) {
    sdl_sched_desc s;
    memset(&s, 0, sizeof s);
    s.kind = SDL_SCHED_ONE_CYCLE;
    s.base_lr = 0.1f;
    s.total = 1000; /* pct_start 0.3: rise over [0, 299], fall over [299, 999] */
    double lo = 0.1 / 25, end = lo / 1e4, mx = (double)0.1f;
    const int64_t at[6] = {0, 150, 299, 649, 999, 2000};
    const double want[6] = {lo, mx + (lo - mx) * (1 + cos(PI * 150 / 299.0)) / 2, mx,
                            end + (mx - end) * 0.5, end, end};
    for (int i = 0; i < 6; i++) {
        double got = sdl_sched_lr(&s, at[i]);
        CHECK(fabs(got - want[i]) <= 1e-6 * want[i] + 1e-12, "one-cycle at %lld: %.9g, want %.9g", (long long)at[i], got, want[i]);
    }
    CHECK(sdl_sched_lr(&s, 298) < sdl_sched_lr(&s, 299) && sdl_sched_lr(&s, 300) < sdl_sched_lr(&s, 299), "peak at step 299");
    /* custom factors */
    s.pct_start = 0.25f;
    s.div_factor = 10;
    s.final_div_factor = 100;
    CHECK(near(sdl_sched_lr(&s, 0), 0.01) && near(sdl_sched_lr(&s, 249), mx) && near(sdl_sched_lr(&s, 999), 0.0001), "one-cycle 0.25/10/100: %g %g %g", sdl_sched_lr(&s, 0), sdl_sched_lr(&s, 249), sdl_sched_lr(&s, 999));
    /* with warm-up in front: ramps to the cycle's start, the cycle runs over [warmup, total) */
    s.warmup = 10;
    s.warmup_start_factor = 0.5f;
    CHECK(near(sdl_sched_lr(&s, 0), 0.005) && near(sdl_sched_lr(&s, 10), 0.01) && near(sdl_sched_lr(&s, 999), 0.0001), "one-cycle after warm-up");
    /* its rise ends 0.25 * 990 - 1 = 246.5 steps after the warm-up */
    double near_peak = mx + (0.01 - mx) * (1 + cos(PI * 246 / 246.5)) / 2;
    CHECK(near(sdl_sched_lr(&s, 10 + 246), near_peak), "one-cycle after warm-up at 256: %.9g, want %.9g", sdl_sched_lr(&s, 256), near_peak);
}

static void test_scale_lr(void) {
    CHECK(near(sdl_scale_lr(0.1f, 4, 0, 0), 0.4), "lr * size");
    CHECK(near(sdl_scale_lr(0.1f, 8, 64, 256), 0.2), "lr * 8 * 64 / 256");
    CHECK(near(sdl_scale_lr(0.1f, 0, 0, 0), 0.1), "world 0 counts as 1");
}

/* ---- clipping ---- */
static void test_clip_grad_norm(void) {
    sdl_model *m = make_pset(2);
    set_grads(m, 1);
    double want = 0;
    for (int j = 0; j < NP; j++) want += (double)m->grad_data[j] * m->grad_data[j];
    want = sqrt(want);
    float before[NP];
    memcpy(before, m->grad_data, sizeof before);
    float n1 = sdl_clip_grad_norm(m, (float)want * 2);
    CHECK(near(n1, want) && memcmp(before, m->grad_data, sizeof before) == 0, "below the limit: norm %g (want %g), untouched", n1, want);
    float n2 = sdl_clip_grad_norm(m, (float)(want / 3));
    double after = 0, worst = 0, f = (want / 3) / (want + 1e-6);
    for (int j = 0; j < NP; j++) {
        after += (double)m->grad_data[j] * m->grad_data[j];
        worst = fmax(worst, fabs(m->grad_data[j] - before[j] * f));
    }
    CHECK(near(n2, want), "returns the norm before clipping");
    CHECK(fabs(sqrt(after) - want / 3) < 1e-6 * want, "clipped norm %g, want %g", sqrt(after), want / 3);
    CHECK(worst < 1e-6, "each gradient scaled by max / (norm + 1e-6): off by %g", worst);
    m->grad_data[3] = NAN;
    memcpy(before, m->grad_data, sizeof before);
    float n3 = sdl_clip_grad_norm(m, 1.0f);
    CHECK(isnan(n3) && memcmp(before, m->grad_data, sizeof before) == 0, "NaN norm returned, gradients left alone");
    sdl_model_free(m);
}

/* a large model: the norm (and lamb/lars updates) are the same bits for 1, 2 or 3 threads */
static sdl_model *make_big(void) {
    sdl_model *m = sdl_model_new(21);
    sdl_tensor_uniform(sdl_model_param(m, "a", sdl_shape2(300, 301), true), -1, 1);
    sdl_tensor_uniform(sdl_model_param(m, "b", sdl_shape1(301), false), -1, 1);
    sdl_tensor_uniform(sdl_model_param(m, "c", sdl_shape1(40000), true), -1, 1);
    sdl_model_pack(m);
    return m;
}
static void big_grads(sdl_model *m, int s) {
    for (int64_t j = 0; j < m->param_floats; j++) m->grad_data[j] = 0.1f * m->param_data[j] + 0.01f * (float)((j * 7 + s) % 13) - 0.06f;
}
static void test_threads_bitwise(void) {
    float norm[3];
    float *params[3];
    double want = 0;
    for (int nt = 1; nt <= 3; nt++) {
        sdl_set_num_threads(nt);
        sdl_model *m = make_big();
        sdl_optim *lamb = sdl_lamb(m, 0.01f, 0, 0, 0.01f);
        sdl_optim *lars = sdl_lars(m, 0.1f, 0.9f, 1e-4f, 0);
        for (int t = 0; t < 3; t++) {
            big_grads(m, t);
            if (t == 0 && nt == 1)
                for (int64_t j = 0; j < m->param_floats; j++) want += (double)m->grad_data[j] * m->grad_data[j];
            if (t == 0) norm[nt - 1] = sdl_clip_grad_norm(m, 1e9f);
            sdl_optim_step(t % 2 ? lars : lamb);
        }
        params[nt - 1] = (float *)malloc(sizeof(float) * (size_t)m->param_floats);
        memcpy(params[nt - 1], m->param_data, sizeof(float) * (size_t)m->param_floats);
        size_t bytes = sizeof(float) * (size_t)m->param_floats;
        if (nt > 1) CHECK(memcmp(params[0], params[nt - 1], bytes) == 0, "%d threads: parameters differ from 1 thread", nt);
        sdl_optim_free(lamb);
        sdl_optim_free(lars);
        sdl_model_free(m);
    }
    sdl_set_num_threads(0);
    CHECK(memcmp(&norm[0], &norm[1], sizeof(float)) == 0 && memcmp(&norm[0], &norm[2], sizeof(float)) == 0, "norms %.9g %.9g %.9g", norm[0], norm[1], norm[2]);
    CHECK(near(norm[0], sqrt(want)), "norm %.9g, want %.9g", norm[0], sqrt(want));
    for (int i = 0; i < 3; i++) free(params[i]);
}

/* ---- gradient accumulation: k micro-batches of B/k = one batch of B ---- */
static sdl_module *make_mlp(sdl_model *m) {
    sdl_module *net = sdl_sequential(m, "");
    sdl_seq_add(net, sdl_linear_layer(m, "fc1", 6, 16, true));
    sdl_seq_add(net, sdl_relu_layer(m));
    sdl_seq_add(net, sdl_linear_layer(m, "fc2", 16, 4, true));
    return net;
}

static double accum_vs_full(const ref_cfg *c, float max_norm, int *pattern_ok) {
    enum { B = 12, K = 3, MB = B / K };
    sdl_model *ma = sdl_model_new(5); /* each model draws its weights right after its seed */
    sdl_module *na = make_mlp(ma);
    sdl_model *mb = sdl_model_new(5);
    sdl_module *nb = make_mlp(mb);
    sdl_optim *oa = make_opt(ma, c, K), *ob = make_opt(mb, c, 1);
    oa->desc.max_grad_norm = ob->desc.max_grad_norm = max_norm;
    sdl_manual_seed(77);
    sdl_tensor *x = sdl_tensor_new(sdl_shape2(B, 6), SDL_F32);
    sdl_tensor_randn(x, 0, 1);
    sdl_tensor *y = test_ids(B, 4);
    sdl_tensor *xs[K], *ys[K];
    for (int k = 0; k < K; k++) {
        xs[k] = sdl_tensor_from(sdl_shape2(MB, 6), sdl_f32(x) + k * MB * 6);
        ys[k] = sdl_tensor_new(sdl_shape1(MB), SDL_I32);
        memcpy(ys[k]->data, sdl_i32(y) + k * MB, MB * sizeof(int32_t));
    }
    *pattern_ok = 1;
    for (int step = 0; step < 4; step++) {
        for (int k = 0; k < K; k++) {
            if (sdl_optim_is_update_step(oa) != (k == K - 1)) *pattern_ok = 0;
            sdl_arena_reset();
            sdl_backward(sdl_cross_entropy(sdl_forward(na, xs[k]), ys[k], 0.0f));
            sdl_optim_step(oa);
            if (oa->step != step + (k == K - 1)) *pattern_ok = 0;
        }
        sdl_arena_reset();
        sdl_backward(sdl_cross_entropy(sdl_forward(nb, x), y, 0.0f));
        sdl_optim_step(ob);
    }
    double diff = 0, mx = 0;
    for (int64_t j = 0; j < ma->param_floats; j++) {
        diff = fmax(diff, fabs(ma->param_data[j] - mb->param_data[j]));
        mx = fmax(mx, fabs(mb->param_data[j]));
    }
    for (int64_t j = 0; j < ma->param_floats; j++)
        if (ma->grad_data[j] != 0.0f) *pattern_ok = 0; /* the update zeroed the gradients */
    for (int k = 0; k < K; k++) { sdl_tensor_free(xs[k]); sdl_tensor_free(ys[k]); }
    sdl_tensor_free(x);
    sdl_tensor_free(y);
    sdl_optim_free(oa);
    sdl_optim_free(ob);
    sdl_model_free(ma);
    sdl_model_free(mb);
    return diff / mx;
}

static void test_accumulation(void) {
    int ok[3];
    double e[3] = {accum_vs_full(&cfg_nesterov, 0, &ok[0]), accum_vs_full(&cfg_adam, 0, &ok[1]),
                   accum_vs_full(&cfg_lamb, 0.05f, &ok[2])};
    printf("  3 x 4 vs 12 rows, max |diff| / max |p| after 4 updates: sgd nesterov %.3g, adam %.3g, lamb + clip 0.05 %.3g\n", e[0], e[1], e[2]);
    CHECK(ok[0] && ok[1] && ok[2], "is_update_step / step counter / zeroing pattern: %d %d %d", ok[0], ok[1], ok[2]);
    CHECK(e[0] < 1e-6 && e[1] < 1e-6 && e[2] < 1e-6, "relative differences %g %g %g", e[0], e[1], e[2]);
}

/* max_grad_norm in the desc = clipping by hand before the step */
static void test_clip_in_step(void) {
    sdl_model *ma = make_pset(6), *mb = make_pset(6);
    sdl_optim *oa = make_opt(ma, &cfg_momentum, 0), *ob = make_opt(mb, &cfg_momentum, 0);
    oa->desc.max_grad_norm = 0.5f;
    for (int t = 0; t < 4; t++) {
        set_grads(ma, t);
        set_grads(mb, t);
        float nb = sdl_clip_grad_norm(mb, 0.5f);
        sdl_optim_step(oa);
        sdl_optim_step(ob);
        CHECK(oa->grad_norm == nb && nb > 0.5f, "step %d: grad_norm %g vs %g", t, oa->grad_norm, nb);
    }
    CHECK(memcmp(ma->param_data, mb->param_data, sizeof(float) * NP) == 0, "clip in step = clip by hand");
    sdl_optim_free(oa); sdl_optim_free(ob);
    sdl_model_free(ma); sdl_model_free(mb);
}

/* ---- state save/restore: a fresh optimizer given the saved parameters, state and step
   continues exactly like the original ---- */
static int restore_matches(const ref_cfg *c, bool restore_state) {
    sdl_model *ma = make_pset(8), *mb = make_pset(8);
    sdl_optim *oa = make_opt(ma, c, 0), *ob = make_opt(mb, c, 0);
    for (int t = 0; t < 3; t++) { set_grads(ma, t); sdl_optim_step(oa); }
    /* save: names, slots, step (as a checkpoint would) ... and restore into ob */
    int ok = sdl_optim_state_count(oa) == sdl_optim_state_count(ob) && sdl_optim_state_count(oa) == (c->kind == SDL_OPTIM_SGD || c->kind == SDL_OPTIM_LARS ? 1 : 2);
    memcpy(mb->param_data, ma->param_data, sizeof(float) * NP);
    for (int k = 0; restore_state && k < sdl_optim_state_count(oa); k++) {
        ok &= strcmp(sdl_optim_state_name(oa, k), sdl_optim_state_name(ob, k)) == 0;
        memcpy(sdl_optim_state_data(ob, k), sdl_optim_state_data(oa, k), sizeof(float) * NP);
    }
    if (restore_state) ob->step = oa->step;
    for (int t = 3; t < 6; t++) {
        set_grads(ma, t);
        set_grads(mb, t);
        sdl_optim_step(oa);
        sdl_optim_step(ob);
    }
    ok &= memcmp(ma->param_data, mb->param_data, sizeof(float) * NP) == 0;
    ok &= memcmp(oa->state, ob->state, sizeof(float) * NP * (size_t)oa->nstate) == 0;
    sdl_optim_free(oa); sdl_optim_free(ob);
    sdl_model_free(ma); sdl_model_free(mb);
    return ok;
}

static void test_state_round_trip(void) {
    const ref_cfg *cs[5] = {&cfg_nesterov, &cfg_adam, &cfg_adamw, &cfg_lars, &cfg_lamb};
    for (int i = 0; i < 5; i++) {
        CHECK(restore_matches(cs[i], true), "kind %d: restored optimizer diverges", (int)cs[i]->kind);
        CHECK(!restore_matches(cs[i], false), "kind %d: the test cannot tell a missing restore", (int)cs[i]->kind);
    }
    sdl_model *m = make_pset(1);
    sdl_optim *a = sdl_adamw(m, 0, 0, 0, 0.01f), *s = sdl_sgd(m, 0.1f, 0.9f, 0, false);
    CHECK(strcmp(sdl_optim_state_name(a, 0), "exp_avg") == 0 && strcmp(sdl_optim_state_name(a, 1), "exp_avg_sq") == 0, "adam names");
    CHECK(strcmp(sdl_optim_state_name(s, 0), "momentum_buffer") == 0 && !sdl_optim_state_name(s, 1), "sgd names");
    CHECK(sdl_optim_state_data(a, 1) == a->state + NP && !sdl_optim_state_data(a, 2), "slot layout");
    sdl_optim_free(a); sdl_optim_free(s);
    sdl_model_free(m);
}

/* ---- a steady-state step allocates nothing, for every kind ---- */
static void test_no_allocation(void) {
    const ref_cfg *cs[5] = {&cfg_nesterov, &cfg_adam, &cfg_adamw, &cfg_lars, &cfg_lamb};
    sdl_model *m = make_big();
    for (int i = 0; i < 5; i++) {
        sdl_optim *o = make_opt(m, cs[i], 2);
        o->desc.max_grad_norm = 1.0f;
        big_grads(m, 0);
        sdl_optim_step(o);
        sdl_optim_step(o);
        long before = sdl_test_allocs;
        for (int t = 0; t < 4; t++) { big_grads(m, t); sdl_optim_step(o); }
        CHECK(sdl_test_allocs == before, "kind %d: %ld allocations", (int)cs[i]->kind, sdl_test_allocs - before);
        sdl_optim_free(o);
    }
    sdl_model_free(m);
}

int main(void) {
    (void)gradcheck; /* sdl_test.h's, unused here */
    RUN(test_sgd_reference);
    RUN(test_adam_reference);
    RUN(test_adamw_reference);
    RUN(test_lars_reference);
    RUN(test_lamb_reference);
    RUN(test_reference_discriminates);
    RUN(test_decay_exclusion);
    RUN(test_trust_exclusion);
    RUN(test_defaults_and_errors);
    RUN(test_sched_constant_and_step);
    RUN(test_sched_cosine);
    RUN(test_sched_one_cycle);
    RUN(test_scale_lr);
    RUN(test_clip_grad_norm);
    RUN(test_threads_bitwise);
    RUN(test_accumulation);
    RUN(test_clip_in_step);
    RUN(test_state_round_trip);
    RUN(test_no_allocation);
    return sdl_test_finish();
}
