// drpo-train-cpp.cpp - robust training from C++17: RAII handles, a model
// whose forward/backward are C++ lambdas, and exceptions that cross the C
// library safely (caught in the trampolines, rethrown after the step).
//
// Trains a linear Bradley-Terry reward model r(x, y) = theta . phi(x, y) on
// generated pairs under a chi-square ball over prompts, shows that an
// exception thrown inside a callback fails the step without changing the
// parameters, and exits non-zero if training does not reach 80% accuracy.
#include "drpo.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace drpo {

// ---- errors and handles -------------------------------------------------

struct Error : std::runtime_error {
    drpo_status code;
    Error(drpo_status c, const std::string &what) : std::runtime_error(what), code(c) {}
};

inline void check(drpo_status st, const char *message)
{
    if (st < 0)
        throw Error(st, std::string(drpo_status_string(st)) + ": " + message);
}

// unique_ptr with the library's free function as its deleter
template <auto Free> struct Deleter {
    template <class T> void operator()(T *p) const noexcept { Free(p); }
};
using ObjectivePtr = std::unique_ptr<drpo_objective, Deleter<drpo_objective_free>>;
using BatchPtr = std::unique_ptr<drpo_batch, Deleter<drpo_batch_free>>;
using ModelPtr = std::unique_ptr<drpo_model, Deleter<drpo_model_free>>;
using TrainerPtr = std::unique_ptr<drpo_trainer, Deleter<drpo_trainer_free>>;

inline ObjectivePtr make_objective(int32_t set, int32_t key, double value)
{
    drpo_objective *o = nullptr;
    check(drpo_objective_create(&o, set), "drpo_objective_create");
    ObjectivePtr p(o);
    check(drpo_objective_set(o, key, value), drpo_objective_last_error(o));
    return p;
}

inline BatchPtr make_batch()
{
    drpo_batch *b = nullptr;
    check(drpo_batch_create(&b), "drpo_batch_create");
    return BatchPtr(b);
}

// ---- a model of C++ callables -------------------------------------------

// Owns the callables and the library model; the trampolines never let an
// exception reach C: they keep it and return 1, and step() rethrows it.
class Model {
  public:
    using Forward = std::function<void(const float *params, const drpo_batch *b, double *loss)>;
    using Backward = std::function<void(const float *params, const drpo_batch *b,
                                        const double *weight, float *grad)>;

    Model(size_t n_params, Forward f, Backward g) : forward_(std::move(f)), backward_(std::move(g))
    {
        drpo_model_callbacks cb{};
        cb.struct_size = sizeof cb;
        cb.forward = &Model::forward_trampoline;
        cb.backward = &Model::backward_trampoline;
        drpo_model *m = nullptr;
        check(drpo_model_create(&m, n_params, &cb, this), "drpo_model_create");
        model_.reset(m);
    }
    Model(const Model &) = delete; // the library holds `this`
    Model &operator=(const Model &) = delete;

    drpo_model *get() const { return model_.get(); }
    float *params() const { return drpo_model_params(model_.get()); }
    size_t n_params() const { return drpo_model_n_params(model_.get()); }

    // The exception a callback threw during the last call, if any (cleared).
    std::exception_ptr take_exception() { return std::exchange(pending_, nullptr); }

  private:
    static int forward_trampoline(void *user, const float *params, const drpo_batch *b,
                                  double *loss) noexcept
    {
        auto *self = static_cast<Model *>(user);
        try {
            self->forward_(params, b, loss);
            return 0;
        } catch (...) {
            self->pending_ = std::current_exception();
            return 1;
        }
    }
    static int backward_trampoline(void *user, const float *params, const drpo_batch *b,
                                   const double *w, float *grad) noexcept
    {
        auto *self = static_cast<Model *>(user);
        try {
            self->backward_(params, b, w, grad);
            return 0;
        } catch (...) {
            self->pending_ = std::current_exception();
            return 1;
        }
    }

    Forward forward_;
    Backward backward_;
    std::exception_ptr pending_;
    ModelPtr model_; // last: freed first
};

// A trainer over a Model and an objective (both must outlive it).
class Trainer {
  public:
    Trainer(Model &m, drpo_objective *o) : model_(m)
    {
        drpo_trainer *t = nullptr;
        check(drpo_trainer_create(&t, m.get(), o), "drpo_trainer_create");
        trainer_.reset(t);
    }
    void set(int32_t key, double value)
    {
        check(drpo_trainer_set(trainer_.get(), key, value), drpo_trainer_last_error(trainer_.get()));
    }
    double diag(int32_t key) const
    {
        double v = 0.0;
        check(drpo_trainer_diag(trainer_.get(), key, &v), drpo_trainer_last_error(trainer_.get()));
        return v;
    }
    // One robust step; rethrows what a callback threw (the step changed nothing).
    void step(const drpo_batch *b)
    {
        drpo_status st = drpo_trainer_step(trainer_.get(), b);
        if (std::exception_ptr e = model_.take_exception())
            std::rethrow_exception(e);
        check(st, drpo_trainer_last_error(trainer_.get()));
    }

  private:
    Model &model_;
    TrainerPtr trainer_;
};

} // namespace drpo

// ---- the example ------------------------------------------------------------

namespace {

constexpr size_t kDim = 4, kRows = 600, kPerPrompt = 3;

struct Data {
    std::vector<double> x; // kRows x kDim: phi(chosen) - phi(rejected)
    double margin(const float *theta, size_t h) const
    {
        double m = 0.0;
        for (size_t i = 0; i < kDim; i++)
            m += theta[i] * x[h * kDim + i];
        return m;
    }
};

Data make_data()
{
    const double truth[kDim] = {1.5, -1.0, 0.5, 0.0};
    std::mt19937_64 rng(12345);
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> unif;
    Data d;
    d.x.resize(kRows * kDim);
    for (size_t h = 0; h < kRows; h++) {
        double z = 0.0;
        for (size_t i = 0; i < kDim; i++) {
            d.x[h * kDim + i] = normal(rng);
            z += truth[i] * d.x[h * kDim + i];
        }
        double y = unif(rng) < 1.0 / (1.0 + std::exp(-3.0 * z)) ? 1.0 : -1.0;
        for (size_t i = 0; i < kDim; i++)
            d.x[h * kDim + i] *= y;
    }
    return d;
}

double accuracy(const Data &d, const float *theta)
{
    size_t good = 0;
    for (size_t h = 0; h < kRows; h++)
        good += d.margin(theta, h) > 0.0;
    return double(good) / kRows;
}

} // namespace

int main()
{
    try {
        const Data data = make_data();
        bool poison = false; // makes forward throw, to show the error path

        drpo::Model model(
            kDim,
            [&](const float *theta, const drpo_batch *b, double *loss) {
                if (poison)
                    throw std::runtime_error("forward: the feature store is unavailable");
                for (size_t j = 0; j < drpo_batch_size(b); j++) {
                    double m = data.margin(theta, size_t(drpo_batch_host_index(b, j)));
                    loss[j] = m > 0 ? std::log1p(std::exp(-m)) : -m + std::log1p(std::exp(m));
                }
            },
            [&](const float *theta, const drpo_batch *b, const double *w, float *grad) {
                std::vector<double> g(kDim, 0.0);
                for (size_t j = 0; j < drpo_batch_size(b); j++) {
                    size_t h = size_t(drpo_batch_host_index(b, j));
                    double s = -w[j] / (1.0 + std::exp(data.margin(theta, h)));
                    for (size_t i = 0; i < kDim; i++)
                        g[i] += s * data.x[h * kDim + i];
                }
                for (size_t i = 0; i < kDim; i++)
                    grad[i] = float(g[i]);
            });

        drpo::ObjectivePtr objective = drpo::make_objective(DRPO_SET_CHI2, DRPO_PARAM_RADIUS, 0.2);
        drpo::Trainer trainer(model, objective.get());
        trainer.set(DRPO_TRAIN_OPTIMIZER, DRPO_OPT_ADAMW);
        trainer.set(DRPO_TRAIN_LR, 0.05);

        drpo::BatchPtr batch = drpo::make_batch();
        const size_t per_batch = 60;
        for (int step = 0; step < 300; step++) {
            drpo_batch_clear(batch.get());
            size_t start = (size_t(step) * per_batch) % kRows;
            for (size_t h = start; h < start + per_batch; h++)
                drpo::check(drpo_batch_add_key(batch.get(), h / kPerPrompt, DRPO_GROUP_NONE,
                                               int64_t(h)),
                            "drpo_batch_add_key");
            if (step == 100) { // a throwing callback: the step fails, nothing changes
                std::vector<float> before(model.params(), model.params() + kDim);
                poison = true;
                try {
                    trainer.step(batch.get());
                    std::fprintf(stderr, "the poisoned step did not throw\n");
                    return 1;
                } catch (const std::runtime_error &e) {
                    std::printf("step %d failed as expected: %s\n", step, e.what());
                }
                poison = false;
                if (!std::equal(before.begin(), before.end(), model.params())) {
                    std::fprintf(stderr, "a failed step changed the parameters\n");
                    return 1;
                }
            }
            trainer.step(batch.get());
            if (step % 100 == 0)
                std::printf("step %3d: robust %.4f  mean %.4f\n", step,
                            trainer.diag(DRPO_TDIAG_ROBUST), trainer.diag(DRPO_TDIAG_MEAN_LOSS));
        }
        double acc = accuracy(data, model.params());
        std::printf("theta = [%.3f %.3f %.3f %.3f], accuracy %.3f after %.0f steps\n",
                    double(model.params()[0]), double(model.params()[1]),
                    double(model.params()[2]), double(model.params()[3]), acc,
                    trainer.diag(DRPO_TDIAG_STEPS));
        return acc >= 0.8 ? 0 : 1;
    } catch (const drpo::Error &e) {
        std::fprintf(stderr, "libdrpo error %d: %s\n", int(e.code), e.what());
        return 1;
    }
}
