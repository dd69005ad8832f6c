// fireopt's optional native kernels for TensorFlow.js on CPU, reading and writing the caller's
// Float32Arrays in place (for the wasm backend those are views of the wasm heap: nothing is copied):
// - a blocked, multi-threaded single-precision matrix product C[i] = op(A[i]) · op(B[i]),
//   op = identity or transpose;
// - the training loss over the vocabulary, fused: soft-target cross-entropy −Σ c·log softmax(x)
//   with sparse coefficients c, and its gradient, in one or two passes over the logits;
// - one AdamW update of a parameter and its moments in a single pass;
// - ingest's hashes: the sha256 of every sample of a block in one call (see sampleDigests), and of
//   a conversation id for its split.
//
// Built at install time for the machine it runs on (`-march=native`, see scripts/build-native.mjs);
// never required: without it fireopt uses the wasm backend's own kernels.
//
// The product's layout follows the usual GotoBLAS scheme: C is computed in NC-column × KC-deep blocks; a block of
// B is packed into NR-wide panels, a block of A into MR-tall panels, and a register-tiled
// micro-kernel computes one MR × NR tile of C from one panel of each. Work is split between threads
// by batch item, then by rows of C, then by columns.

#include <dlfcn.h>
#include <node_api.h>

#if __has_include(<openssl/sha.h>)
#include <openssl/sha.h>
#define FIREOPT_HAVE_SHA256 1
#endif

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace {

#if defined(__AVX512F__)
constexpr int W = 16;  // floats per vector register
constexpr int MR = 8;  // rows of C per micro-tile: MR × 2 accumulators of W floats
const char* const kIsa = "avx512";
#elif defined(__AVX__)
constexpr int W = 8;
constexpr int MR = 6;
const char* const kIsa = "avx2";
#else
constexpr int W = 4;
constexpr int MR = 4;
const char* const kIsa = "generic";
#endif
constexpr int NR = 2 * W;  // columns of C per micro-tile
constexpr int KC = 256;    // depth of a packed block
constexpr int MC = 192;    // rows of A per packed block (a multiple of MR is not needed)
constexpr int NC = 2048;   // columns of B per packed block

typedef float Vec __attribute__((vector_size(W * 4)));
typedef float UVec __attribute__((vector_size(W * 4), aligned(4)));  // unaligned access to C

struct Operand {
  const float* data;
  bool transposed;  // stored as [cols, rows] instead of [rows, cols]
  int64_t rows, cols;

  float at(int64_t r, int64_t c) const { return transposed ? data[c * rows + r] : data[r * cols + c]; }
};

// Packs rows [r0, r0 + mc) × depth [p0, p0 + kc) of op(A) into MR-tall panels: panel q holds
// element (r0 + q·MR + i, p0 + p) at q·MR·kc + p·MR + i; rows past the end are zeros.
void packA(const Operand& a, int64_t r0, int mc, int64_t p0, int kc, float* out) {
  for (int q = 0; q < mc; q += MR) {
    const int m = std::min(MR, mc - q);
    float* panel = out + static_cast<int64_t>(q) * kc;
    if (a.transposed) {
      // A stored [K, M]: one depth step is contiguous across the panel's rows.
      for (int p = 0; p < kc; p++) {
        const float* src = a.data + (p0 + p) * a.rows + r0 + q;
        float* dst = panel + p * MR;
        int i = 0;
        for (; i < m; i++) dst[i] = src[i];
        for (; i < MR; i++) dst[i] = 0.f;
      }
    } else {
      for (int i = 0; i < MR; i++) {
        if (i < m) {
          const float* src = a.data + (r0 + q + i) * a.cols + p0;
          for (int p = 0; p < kc; p++) panel[p * MR + i] = src[p];
        } else {
          for (int p = 0; p < kc; p++) panel[p * MR + i] = 0.f;
        }
      }
    }
  }
}

// Packs depth [p0, p0 + kc) × columns [c0, c0 + nc) of op(B) into NR-wide panels: panel q holds
// element (p0 + p, c0 + q·NR + j) at q·NR·kc + p·NR + j; columns past the end are zeros.
void packB(const Operand& b, int64_t p0, int kc, int64_t c0, int nc, float* out) {
  for (int q = 0; q < nc; q += NR) {
    const int n = std::min(NR, nc - q);
    float* panel = out + static_cast<int64_t>(q) * kc;
    if (!b.transposed) {
      // B stored [K, N]: one depth step of the panel is contiguous.
      for (int p = 0; p < kc; p++) {
        const float* src = b.data + (p0 + p) * b.cols + c0 + q;
        float* dst = panel + p * NR;
        if (n == NR) {
          std::memcpy(dst, src, sizeof(float) * NR);
        } else {
          int j = 0;
          for (; j < n; j++) dst[j] = src[j];
          for (; j < NR; j++) dst[j] = 0.f;
        }
      }
    } else {
      // B stored [N, K]: each column of op(B) is contiguous in depth.
      for (int j = 0; j < NR; j++) {
        if (j < n) {
          const float* src = b.data + (c0 + q + j) * b.rows + p0;
          for (int p = 0; p < kc; p++) panel[p * NR + j] = src[p];
        } else {
          for (int p = 0; p < kc; p++) panel[p * NR + j] = 0.f;
        }
      }
    }
  }
}

// x in every lane (written so that the compiler emits one broadcast, not a broadcast plus an add).
inline Vec splat(float x) {
#if defined(__AVX512F__)
  return reinterpret_cast<Vec>(_mm512_set1_ps(x));
#elif defined(__AVX__)
  return reinterpret_cast<Vec>(_mm256_set1_ps(x));
#else
  Vec v;
  for (int l = 0; l < W; l++) v[l] = x;
  return v;
#endif
}

// One MR × NR tile: c (row stride ldc) = (accumulate ? c : 0) + a-panel · b-panel over kc steps;
// only the top-left m × n corner of the tile is written.
inline void microKernel(int kc, const float* __restrict a, const float* __restrict b, float* __restrict c, int64_t ldc,
                        bool accumulate, int m, int n) {
  Vec acc[MR][2];
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = Vec{};
  for (int p = 0; p < kc; p++) {
    const Vec b0 = *reinterpret_cast<const Vec*>(b + p * NR);
    const Vec b1 = *reinterpret_cast<const Vec*>(b + p * NR + W);
    const float* ap = a + p * MR;
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      const Vec ai = splat(ap[i]);
      acc[i][0] += ai * b0;
      acc[i][1] += ai * b1;
    }
  }
  if (m == MR && n == NR) {
    for (int i = 0; i < MR; i++) {
      UVec* row = reinterpret_cast<UVec*>(c + i * ldc);
      if (accumulate) {
        row[0] += acc[i][0];
        row[1] += acc[i][1];
      } else {
        row[0] = acc[i][0];
        row[1] = acc[i][1];
      }
    }
    return;
  }
  alignas(64) float tile[MR][NR];
  for (int i = 0; i < MR; i++) {
    *reinterpret_cast<Vec*>(&tile[i][0]) = acc[i][0];
    *reinterpret_cast<Vec*>(&tile[i][W]) = acc[i][1];
  }
  for (int i = 0; i < m; i++) {
    float* row = c + i * ldc;
    if (accumulate) {
      for (int j = 0; j < n; j++) row[j] += tile[i][j];
    } else {
      for (int j = 0; j < n; j++) row[j] = tile[i][j];
    }
  }
}

struct AlignedBuffer {
  float* data = nullptr;
  size_t capacity = 0;
  float* get(size_t floats) {
    if (floats > capacity) {
      std::free(data);
      data = static_cast<float*>(std::aligned_alloc(64, ((floats * sizeof(float) + 63) / 64) * 64));
      capacity = data ? floats : 0;
    }
    return data;
  }
  ~AlignedBuffer() { std::free(data); }
};

thread_local AlignedBuffer packedA;
thread_local AlignedBuffer packedB;

// C rows [m0, m1) × columns [n0, n1) of one product; C has row stride ldc.
void gemmBlock(const Operand& a, const Operand& b, float* c, int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t K = a.cols;
  float* bp = packedB.get(static_cast<size_t>(KC) * (NC + NR));
  float* ap = packedA.get(static_cast<size_t>(KC) * (MC + MR));
  if (!bp || !ap) throw std::bad_alloc();
  for (int64_t jc = n0; jc < n1; jc += NC) {
    const int nc = static_cast<int>(std::min<int64_t>(NC, n1 - jc));
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int kc = static_cast<int>(std::min<int64_t>(KC, K - pc));
      packB(b, pc, kc, jc, nc, bp);
      for (int64_t ic = m0; ic < m1; ic += MC) {
        const int mc = static_cast<int>(std::min<int64_t>(MC, m1 - ic));
        packA(a, ic, mc, pc, kc, ap);
        for (int jr = 0; jr < nc; jr += NR) {
          for (int ir = 0; ir < mc; ir += MR) {
            microKernel(kc, ap + static_cast<int64_t>(ir) * kc, bp + static_cast<int64_t>(jr) * kc,
                        c + (ic + ir) * ldc + jc + jr, ldc, pc > 0, std::min(MR, mc - ir), std::min(NR, nc - jr));
          }
        }
      }
    }
  }
  if (K == 0) {
    for (int64_t r = m0; r < m1; r++) std::fill(c + r * ldc + n0, c + r * ldc + n1, 0.f);
  }
}

// A fixed pool of worker threads; the calling thread takes part in every job.
class Pool {
 public:
  explicit Pool(int threads) { resize(threads); }
  ~Pool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int threads) {
    stop();
    stopping_ = false;
    for (int t = 1; t < threads; t++) workers_.emplace_back([this, t] { loop(t); });
  }

  // Runs job(t) for t in [0, tasks) across the pool and returns when all are done.
  void run(int tasks, const std::function<void(int)>& job) {
    if (tasks <= 1 || workers_.empty()) {
      for (int t = 0; t < tasks; t++) job(t);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      tasks_ = tasks;
      next_.store(0);
      pending_ = static_cast<int>(workers_.size());
      generation_++;
    }
    wake_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void work() {
    for (int t = next_.fetch_add(1); t < tasks_; t = next_.fetch_add(1)) (*job_)(t);
  }

  void loop(int) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      work();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;
  int tasks_ = 0;
  std::atomic<int> next_{0};
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
};

Pool* pool = nullptr;
// The addon may be loaded by several JS threads (worker_threads); one job uses the pool at a time,
// and a call that finds it busy runs on its own thread.
std::mutex poolInUse;
std::mutex poolConfig;

struct Task {
  int64_t item, m0, m1, n0, n1;
};

// C[i] = op(A[i]) · op(B[i]) for i < batch; an operand with batch 1 is broadcast.
void batchGemm(const float* a, const float* b, float* c, int64_t batchA, int64_t batchB, int64_t M, int64_t N, int64_t K,
               bool transA, bool transB) {
  const int64_t batch = std::max(batchA, batchB);
  const int threads = pool ? pool->size() : 1;
  const double flops = 2.0 * static_cast<double>(batch) * M * N * K;
  std::vector<Task> tasks;
  if (threads == 1 || flops < 4e6) {
    for (int64_t i = 0; i < batch; i++) tasks.push_back({i, 0, M, 0, N});
  } else if (batch >= threads) {
    for (int64_t i = 0; i < batch; i++) tasks.push_back({i, 0, M, 0, N});
  } else {
    // Split each product into about 2 × threads parts along its longer side: every part packs all
    // of the operand it does not split (a part of rows packs all of B, a part of columns all of A),
    // so splitting the longer side repacks the smaller operand.
    const int64_t parts = 2 * threads;
    if (M >= N) {
      const int64_t step = std::max<int64_t>(MR, ((M + parts - 1) / parts + MR - 1) / MR * MR);
      for (int64_t i = 0; i < batch; i++)
        for (int64_t m = 0; m < M; m += step) tasks.push_back({i, m, std::min(M, m + step), 0, N});
    } else {
      const int64_t step = std::max<int64_t>(NR, ((N + parts - 1) / parts + NR - 1) / NR * NR);
      for (int64_t i = 0; i < batch; i++)
        for (int64_t n = 0; n < N; n += step) tasks.push_back({i, 0, M, n, std::min(N, n + step)});
    }
  }
  auto job = [&](int t) {
    const Task& task = tasks[t];
    const Operand opA{a + (batchA == 1 ? 0 : task.item) * M * K, transA, M, K};
    const Operand opB{b + (batchB == 1 ? 0 : task.item) * K * N, transB, K, N};
    gemmBlock(opA, opB, c + task.item * M * N, N, task.m0, task.m1, task.n0, task.n1);
  };
  std::unique_lock<std::mutex> inUse(poolInUse, std::defer_lock);
  if (tasks.size() > 1 && pool && inUse.try_lock()) {
    pool->run(static_cast<int>(tasks.size()), job);
  } else {
    for (size_t t = 0; t < tasks.size(); t++) job(static_cast<int>(t));
  }
}


// --- Soft-target cross-entropy over the vocabulary -------------------------------------------
//
// Logits x: [N, V]. Coefficients: sparse rows in CSR form (rowPtr [N + 1], cols [nnz]) with S
// coefficient sets per entry (coefs [nnz, S]; e.g. S = 2 for the cross-entropy on the target's token
// and the KL to its top-k). With q = softmax(x) and lse_n = log Σ_v exp(x[n, v]):
//   forward:  partial[n, s] = Σ_j coefs[j, s] · (lse_n − x[n, cols[j]])   (= −Σ_v c_s[n, v] · log q[n, v])
//   backward: grad[n, v] = (Σ_s w_s · Σ_j coefs[j, s]) · q[n, v] − Σ_s w_s · c_s[n, v]
// where w_s is the upstream gradient of set s's sum.

typedef int32_t IVec __attribute__((vector_size(W * 4)));

// e^x for every lane, |relative error| < 2e-7 over the range that matters for softmax (inputs
// below −87 give ~1e-38 instead of a smaller subnormal). Cody–Waite reduction x = k·ln2 + r,
// |r| ≤ ln2/2, then a degree-6 polynomial for e^r and 2^k put into the exponent.
inline Vec vexp(Vec x) {
  const Vec hi = splat(88.37626f), lo = splat(-87.33654f);
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  const Vec magic = splat(12582912.f);  // 1.5 · 2^23: adding it rounds to an integer
  const Vec k = (x * splat(1.44269504088896341f) + magic) - magic;
  Vec r = x - k * splat(0.693359375f);
  r = r - k * splat(-2.12194440e-4f);
  Vec p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  p = p * r * r + r + splat(1.f);
  const IVec exponent = (__builtin_convertvector(k, IVec) + 127) << 23;
  return p * reinterpret_cast<Vec>(exponent);
}

inline float hmax(Vec v) {
  float m = v[0];
  for (int l = 1; l < W; l++) m = std::max(m, v[l]);
  return m;
}
inline float hsum(Vec v) {
  float s = 0.f;
  for (int l = 0; l < W; l++) s += v[l];
  return s;
}
inline Vec loadu(const float* p) { return *reinterpret_cast<const UVec*>(p); }
inline void storeu(float* p, Vec v) { *reinterpret_cast<UVec*>(p) = v; }

// log Σ exp over one row, in two passes (max, then Σ exp(x − max)).
float logSumExp(const float* x, int64_t V) {
  Vec m = splat(-INFINITY);
  int64_t v = 0;
  for (; v + W <= V; v += W) {
    const Vec xv = loadu(x + v);
    m = xv > m ? xv : m;
  }
  float mx = hmax(m);
  for (; v < V; v++) mx = std::max(mx, x[v]);
  if (!std::isfinite(mx)) return mx;  // a row of −inf stays −inf; inf or NaN propagates
  const Vec mv = splat(mx);
  Vec sum = Vec{};
  v = 0;
  for (; v + W <= V; v += W) sum += vexp(loadu(x + v) - mv);
  float total = hsum(sum);
  for (; v < V; v++) total += std::exp(x[v] - mx);
  return mx + std::log(total);
}

struct SoftXent {
  const float* logits;
  int64_t N, V;
  const int32_t* rowPtr;
  const int32_t* cols;
  const float* coefs;
  int64_t S;
};

// Rows split into about 4 × threads parts for the pool.
void forRows(int64_t N, int64_t V, const std::function<void(int64_t, int64_t)>& body) {
  const int threads = pool ? pool->size() : 1;
  const int64_t parts = (threads == 1 || N * V < (1 << 16)) ? 1 : std::min<int64_t>(N, 4 * threads);
  const int64_t step = (N + parts - 1) / std::max<int64_t>(parts, 1);
  auto job = [&](int t) {
    const int64_t r0 = t * step;
    body(r0, std::min(N, r0 + step));
  };
  std::unique_lock<std::mutex> inUse(poolInUse, std::defer_lock);
  if (parts > 1 && pool && inUse.try_lock()) {
    pool->run(static_cast<int>(parts), job);
  } else {
    for (int t = 0; t < parts; t++) job(t);
  }
}

void softXentForward(const SoftXent& in, float* lse, float* partial) {
  forRows(in.N, in.V, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; n++) {
      const float* x = in.logits + n * in.V;
      const float l = logSumExp(x, in.V);
      lse[n] = l;
      float* out = partial + n * in.S;
      for (int64_t s = 0; s < in.S; s++) out[s] = 0.f;
      for (int32_t j = in.rowPtr[n]; j < in.rowPtr[n + 1]; j++) {
        const float logq = x[in.cols[j]] - l;
        for (int64_t s = 0; s < in.S; s++) {
          const float c = in.coefs[static_cast<int64_t>(j) * in.S + s];
          if (c != 0.f) out[s] -= c * logq;
        }
      }
    }
  });
}

void softXentBackward(const SoftXent& in, const float* lse, const float* setWeights, float* grad) {
  forRows(in.N, in.V, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; n++) {
      const float* x = in.logits + n * in.V;
      float* g = grad + n * in.V;
      float mass = 0.f;
      for (int32_t j = in.rowPtr[n]; j < in.rowPtr[n + 1]; j++)
        for (int64_t s = 0; s < in.S; s++) mass += setWeights[s] * in.coefs[static_cast<int64_t>(j) * in.S + s];
      if (mass == 0.f) {
        std::fill(g, g + in.V, 0.f);
      } else {
        const Vec l = splat(lse[n]), scale = splat(mass);
        int64_t v = 0;
        for (; v + W <= in.V; v += W) storeu(g + v, scale * vexp(loadu(x + v) - l));
        for (; v < in.V; v++) g[v] = mass * std::exp(x[v] - lse[n]);
      }
      for (int32_t j = in.rowPtr[n]; j < in.rowPtr[n + 1]; j++)
        for (int64_t s = 0; s < in.S; s++) g[in.cols[j]] -= setWeights[s] * in.coefs[static_cast<int64_t>(j) * in.S + s];
    }
  });
}

// --- AdamW ----------------------------------------------------------------------------------
//
// The same float32 operations in the same order as fireopt's AdamW written with tfjs ops
// (src/train/optimizer.ts), so the results are bit-identical to it: contraction into fused
// multiply-adds is off here.
//   m' = m·β1 + g·(1 − β1);  v' = v·β2 + g²·(1 − β2)
//   p' = p·(1 − decay) − ((m' / c1) / (sqrt(v' / c2) + ε)) · lr
__attribute__((optimize("fp-contract=off"))) void adamW(const float* p, const float* m, const float* v, const float* g,
                                                        float* pOut, float* mOut, float* vOut, int64_t n, float lr,
                                                        float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2,
                                                        float eps, float keep, bool decay, float c1, float c2) {
  for (int64_t i = 0; i < n; i++) {
    const float mi = m[i] * beta1 + g[i] * oneMinusBeta1;
    const float vi = v[i] * beta2 + (g[i] * g[i]) * oneMinusBeta2;
    const float update = (mi / c1) / (std::sqrt(vi / c2) + eps);
    const float base = decay ? p[i] * keep : p[i];
    mOut[i] = mi;
    vOut[i] = vi;
    pOut[i] = base - update * lr;
  }
}

// --- Sample digests (ingest) --------------------------------------------------------------
//
// fireopt ingest names each sample by sha256(context ‖ 0x02 ‖ reply), where the context of a
// conversation's k-th assistant turn is a prefix of its message stream and the reply the bytes
// right after it (src/ingest/samples.ts). Hashing a block's samples here takes one call instead of
// one crypto.hash per sample (~0.5 µs of overhead each), and samples of one conversation share
// the hash state of their common prefix, so each conversation's bytes are hashed about once
// rather than once per turn.
//
// The SHA-256 is OpenSSL's, as exported by the node binary itself (the code Node's crypto runs,
// SHA-NI where the CPU has it): looked up with dlsym when first needed, so that the addon still
// loads, and the other kernels still work, under a Node that does not export it; the function is
// then absent and ingest uses crypto.hash.

#if defined(FIREOPT_HAVE_SHA256)
struct Sha256Api {
  int (*init)(SHA256_CTX*) = nullptr;
  int (*update)(SHA256_CTX*, const void*, size_t) = nullptr;
  int (*final)(unsigned char*, SHA256_CTX*) = nullptr;
  bool ok() const { return init && update && final; }
};

const Sha256Api& sha256Api() {
  static const Sha256Api api = [] {
    Sha256Api found;
    found.init = reinterpret_cast<int (*)(SHA256_CTX*)>(dlsym(RTLD_DEFAULT, "SHA256_Init"));
    found.update = reinterpret_cast<int (*)(SHA256_CTX*, const void*, size_t)>(dlsym(RTLD_DEFAULT, "SHA256_Update"));
    found.final = reinterpret_cast<int (*)(unsigned char*, SHA256_CTX*)>(dlsym(RTLD_DEFAULT, "SHA256_Final"));
    return found;
  }();
  return api;
}

// digest[i] = sha256(data[start_i, split_i) ‖ separator ‖ data[split_i, end_i)) for the samples
// (start, split, end) = spans[3i .. 3i + 2]. A running state over data[start, ·) is kept while
// consecutive samples share `start` and their `split`s do not go back, so a conversation's
// common prefix is hashed once.
void sampleDigests(const Sha256Api& sha, const uint8_t* data, const int32_t* spans, int64_t count, uint8_t separator, uint8_t* out) {
  SHA256_CTX running, sample;
  int32_t runningStart = -1, runningEnd = -1;
  for (int64_t i = 0; i < count; i++) {
    const int32_t start = spans[3 * i], split = spans[3 * i + 1], end = spans[3 * i + 2];
    if (start != runningStart || split < runningEnd) {
      sha.init(&running);
      runningStart = runningEnd = start;
    }
    sha.update(&running, data + runningEnd, static_cast<size_t>(split - runningEnd));
    runningEnd = split;
    sample = running;  // a plain struct: copying it forks the hash
    sha.update(&sample, &separator, 1);
    sha.update(&sample, data + split, static_cast<size_t>(end - split));
    sha.final(out + 32 * i, &sample);
  }
}
#endif

// --- Node-API glue ---------------------------------------------------------------------------

bool throwIf(napi_env env, bool failed, const char* message) {
  if (failed) napi_throw_error(env, "E_NATIVE", message);
  return failed;
}

// The data and length of a typed array of the given type; false for anything else.
template <typename T>
bool typedArray(napi_env env, napi_value value, napi_typedarray_type wanted, T** data, size_t* length) {
  bool isTyped = false;
  if (napi_is_typedarray(env, value, &isTyped) != napi_ok || !isTyped) return false;
  napi_typedarray_type type;
  void* raw = nullptr;
  napi_value buffer;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, value, &type, length, &raw, &buffer, &offset) != napi_ok || type != wanted) return false;
  *data = static_cast<T*>(raw);
  return true;
}

bool float32Array(napi_env env, napi_value value, float** data, size_t* length) {
  return typedArray(env, value, napi_float32_array, data, length);
}

bool int32Array(napi_env env, napi_value value, int32_t** data, size_t* length) {
  return typedArray(env, value, napi_int32_array, data, length);
}

// gemm(a, b, c, batchA, batchB, M, N, K, transposeA, transposeB): writes C (length max(batch)·M·N).
napi_value Gemm(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (throwIf(env, argc != 10, "gemm: expected 10 arguments")) return nullptr;
  float *a, *b, *c;
  size_t lengthA, lengthB, lengthC;
  if (throwIf(env, !float32Array(env, argv[0], &a, &lengthA) || !float32Array(env, argv[1], &b, &lengthB) ||
                       !float32Array(env, argv[2], &c, &lengthC),
              "gemm: a, b and c must be Float32Arrays"))
    return nullptr;
  int64_t dims[5];
  for (int i = 0; i < 5; i++) {
    if (throwIf(env, napi_get_value_int64(env, argv[3 + i], &dims[i]) != napi_ok || dims[i] < 0, "gemm: sizes must be non-negative integers"))
      return nullptr;
  }
  bool transA = false, transB = false;
  napi_get_value_bool(env, argv[8], &transA);
  napi_get_value_bool(env, argv[9], &transB);
  const int64_t batchA = dims[0], batchB = dims[1], M = dims[2], N = dims[3], K = dims[4];
  const int64_t batch = std::max(batchA, batchB);
  if (throwIf(env, batchA != batchB && batchA != 1 && batchB != 1, "gemm: batch sizes differ and neither is 1")) return nullptr;
  if (throwIf(env, static_cast<int64_t>(lengthA) < batchA * M * K || static_cast<int64_t>(lengthB) < batchB * K * N ||
                       static_cast<int64_t>(lengthC) < batch * M * N,
              "gemm: an array is shorter than its shape"))
    return nullptr;
  try {
    batchGemm(a, b, c, batchA, batchB, M, N, K, transA, transB);
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, "E_NATIVE", "gemm: out of memory for packing buffers");
  }
  return nullptr;
}

// Reads (logits, N, V, rowPtr, cols, coefs, S) from argv[0..6] and checks every index against
// the shapes, so that a bad call throws instead of reading or writing out of bounds.
bool readSoftXent(napi_env env, napi_value* argv, SoftXent* in) {
  float* logits;
  float* coefs;
  int32_t* rowPtr;
  int32_t* cols;
  size_t logitsLength, rowPtrLength, colsLength, coefsLength;
  int64_t N, V, S;
  if (throwIf(env, !float32Array(env, argv[0], &logits, &logitsLength) || !int32Array(env, argv[3], &rowPtr, &rowPtrLength) ||
                       !int32Array(env, argv[4], &cols, &colsLength) || !float32Array(env, argv[5], &coefs, &coefsLength),
              "softXent: logits and coefs must be Float32Arrays, rowPtr and cols Int32Arrays"))
    return false;
  if (throwIf(env, napi_get_value_int64(env, argv[1], &N) != napi_ok || napi_get_value_int64(env, argv[2], &V) != napi_ok ||
                       napi_get_value_int64(env, argv[6], &S) != napi_ok || N < 0 || V < 1 || S < 1,
              "softXent: N, V and S must be positive integers"))
    return false;
  if (throwIf(env, static_cast<int64_t>(logitsLength) < N * V || static_cast<int64_t>(rowPtrLength) < N + 1, "softXent: an array is shorter than its shape"))
    return false;
  const int64_t nnz = rowPtr[N];
  if (throwIf(env, rowPtr[0] != 0 || nnz < 0 || static_cast<int64_t>(colsLength) < nnz || static_cast<int64_t>(coefsLength) < nnz * S,
              "softXent: rowPtr does not match cols and coefs"))
    return false;
  for (int64_t n = 0; n < N; n++) {
    if (throwIf(env, rowPtr[n + 1] < rowPtr[n], "softXent: rowPtr must not decrease")) return false;
  }
  for (int64_t j = 0; j < nnz; j++) {
    if (throwIf(env, cols[j] < 0 || cols[j] >= V, "softXent: a column index is outside the vocabulary")) return false;
  }
  *in = SoftXent{logits, N, V, rowPtr, cols, coefs, S};
  return true;
}

// softXentForward(logits, N, V, rowPtr, cols, coefs, S, lse [N], partial [N·S])
napi_value SoftXentForward(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (throwIf(env, argc != 9, "softXentForward: expected 9 arguments")) return nullptr;
  SoftXent in;
  if (!readSoftXent(env, argv, &in)) return nullptr;
  float *lse, *partial;
  size_t lseLength, partialLength;
  if (throwIf(env, !float32Array(env, argv[7], &lse, &lseLength) || !float32Array(env, argv[8], &partial, &partialLength) ||
                       static_cast<int64_t>(lseLength) < in.N || static_cast<int64_t>(partialLength) < in.N * in.S,
              "softXentForward: lse and partial must be Float32Arrays of N and N·S"))
    return nullptr;
  softXentForward(in, lse, partial);
  return nullptr;
}

// softXentBackward(logits, N, V, rowPtr, cols, coefs, S, lse [N], setWeights [S], grad [N·V])
napi_value SoftXentBackward(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (throwIf(env, argc != 10, "softXentBackward: expected 10 arguments")) return nullptr;
  SoftXent in;
  if (!readSoftXent(env, argv, &in)) return nullptr;
  float *lse, *setWeights, *grad;
  size_t lseLength, weightsLength, gradLength;
  if (throwIf(env, !float32Array(env, argv[7], &lse, &lseLength) || !float32Array(env, argv[8], &setWeights, &weightsLength) ||
                       !float32Array(env, argv[9], &grad, &gradLength) || static_cast<int64_t>(lseLength) < in.N ||
                       static_cast<int64_t>(weightsLength) < in.S || static_cast<int64_t>(gradLength) < in.N * in.V,
              "softXentBackward: lse, setWeights and grad must be Float32Arrays of N, S and N·V"))
    return nullptr;
  softXentBackward(in, lse, setWeights, grad);
  return nullptr;
}

// adamW(p, m, v, g, pOut, mOut, vOut, [lr, beta1, 1 − beta1, beta2, 1 − beta2, eps, 1 − lr·decay, decay?, c1, c2])
// (the constants as a Float32Array of 10, rounded to float32 as tfjs rounds scalars).
napi_value AdamW(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (throwIf(env, argc != 8, "adamW: expected 8 arguments")) return nullptr;
  float* arrays[8];
  size_t lengths[8];
  for (int i = 0; i < 8; i++) {
    if (throwIf(env, !float32Array(env, argv[i], &arrays[i], &lengths[i]), "adamW: arguments must be Float32Arrays")) return nullptr;
  }
  const size_t n = lengths[0];
  for (int i = 1; i < 7; i++) {
    if (throwIf(env, lengths[i] != n, "adamW: parameter, moments, gradient and outputs must have one length")) return nullptr;
  }
  if (throwIf(env, lengths[7] != 10, "adamW: expected 10 constants")) return nullptr;
  const float* k = arrays[7];
  adamW(arrays[0], arrays[1], arrays[2], arrays[3], arrays[4], arrays[5], arrays[6], static_cast<int64_t>(n), k[0], k[1], k[2], k[3], k[4],
        k[5], k[6], k[7] != 0.f, k[8], k[9]);
  return nullptr;
}

// sampleDigests(data: Uint8Array, spans: Int32Array [3·count], count, separator, out: Uint8Array [32·count])
napi_value SampleDigests(napi_env env, napi_callback_info info) {
#if defined(FIREOPT_HAVE_SHA256)
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (throwIf(env, argc != 5, "sampleDigests: expected 5 arguments")) return nullptr;
  uint8_t *data, *out;
  int32_t* spans;
  size_t dataLength, spansLength, outLength;
  if (throwIf(env, !typedArray(env, argv[0], napi_uint8_array, &data, &dataLength) || !int32Array(env, argv[1], &spans, &spansLength) ||
                       !typedArray(env, argv[4], napi_uint8_array, &out, &outLength),
              "sampleDigests: data and out must be Uint8Arrays, spans an Int32Array"))
    return nullptr;
  int64_t count;
  uint32_t separator;
  if (throwIf(env, napi_get_value_int64(env, argv[2], &count) != napi_ok || count < 0 || napi_get_value_uint32(env, argv[3], &separator) != napi_ok ||
                       separator > 255,
              "sampleDigests: count must be a non-negative integer and separator a byte"))
    return nullptr;
  if (throwIf(env, spansLength < static_cast<size_t>(3 * count) || outLength < static_cast<size_t>(32 * count), "sampleDigests: spans or out is shorter than count"))
    return nullptr;
  for (int64_t i = 0; i < count; i++) {
    const int64_t start = spans[3 * i], split = spans[3 * i + 1], end = spans[3 * i + 2];
    if (throwIf(env, start < 0 || split < start || end < split || end > static_cast<int64_t>(dataLength), "sampleDigests: a span is outside data"))
      return nullptr;
  }
  const Sha256Api& sha = sha256Api();
  if (throwIf(env, !sha.ok(), "sampleDigests: this Node does not export OpenSSL's SHA256")) return nullptr;
  sampleDigests(sha, data, spans, count, static_cast<uint8_t>(separator), out);
#else
  napi_throw_error(env, "E_NATIVE", "sampleDigests: built without OpenSSL's headers");
#endif
  return nullptr;
}

// sha256Prefix32(text: string): the first 4 bytes of sha256(UTF-8 of text), big-endian, as an
// unsigned integer (ingest's split of a conversation). Lone surrogates become U+FFFD, as in
// crypto.hash.
napi_value Sha256Prefix32(napi_env env, napi_callback_info info) {
#if defined(FIREOPT_HAVE_SHA256)
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  napi_valuetype type = napi_undefined;
  if (throwIf(env, argc != 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_string, "sha256Prefix32: expected a string")) return nullptr;
  char small[512];
  size_t length = 0;
  napi_get_value_string_utf8(env, argv[0], small, sizeof(small), &length);
  const char* text = small;
  std::vector<char> large;
  // A string that may not have fit (the last character written may be followed by one of up to
  // 4 bytes that did not) is read again into a buffer of its exact size.
  if (length + 4 >= sizeof(small)) {
    napi_get_value_string_utf8(env, argv[0], nullptr, 0, &length);
    large.resize(length + 1);
    napi_get_value_string_utf8(env, argv[0], large.data(), large.size(), &length);
    text = large.data();
  }
  const Sha256Api& sha = sha256Api();
  if (throwIf(env, !sha.ok(), "sha256Prefix32: this Node does not export OpenSSL's SHA256")) return nullptr;
  SHA256_CTX context;
  unsigned char digest[32];
  sha.init(&context);
  sha.update(&context, text, length);
  sha.final(digest, &context);
  napi_value result;
  napi_create_uint32(env, (uint32_t(digest[0]) << 24) | (uint32_t(digest[1]) << 16) | (uint32_t(digest[2]) << 8) | uint32_t(digest[3]), &result);
  return result;
#else
  napi_throw_error(env, "E_NATIVE", "sha256Prefix32: built without OpenSSL's headers");
  return nullptr;
#endif
}

// setThreads(n): the number of threads products use (1 = the calling thread only).
napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t threads = 1;
  if (throwIf(env, argc != 1 || napi_get_value_int32(env, argv[0], &threads) != napi_ok || threads < 1 || threads > 256,
              "setThreads: expected an integer from 1 to 256"))
    return nullptr;
  std::lock_guard<std::mutex> config(poolConfig);
  std::lock_guard<std::mutex> inUse(poolInUse);
  if (threads == 1) {
    delete pool;
    pool = nullptr;
  } else if (!pool) {
    pool = new Pool(threads);
  } else if (pool->size() != threads) {
    pool->resize(threads);
  }
  return nullptr;
}

// info(): { isa, threads, mr, nr }
napi_value Info(napi_env env, napi_callback_info) {
  napi_value result, isa, threads, mr, nr;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, kIsa, NAPI_AUTO_LENGTH, &isa);
  napi_create_int32(env, pool ? pool->size() : 1, &threads);
  napi_create_int32(env, MR, &mr);
  napi_create_int32(env, NR, &nr);
  napi_set_named_property(env, result, "isa", isa);
  napi_set_named_property(env, result, "threads", threads);
  napi_set_named_property(env, result, "mr", mr);
  napi_set_named_property(env, result, "nr", nr);
  return result;
}

}  // namespace

NAPI_MODULE_INIT() {
  const napi_property_descriptor properties[] = {
      {"gemm", nullptr, Gemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softXentForward", nullptr, SoftXentForward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softXentBackward", nullptr, SoftXentBackward, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamW", nullptr, AdamW, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties);
#if defined(FIREOPT_HAVE_SHA256)
  // Only where this Node exports OpenSSL's SHA256 (see sampleDigests); ingest checks for it.
  if (sha256Api().ok()) {
    const napi_property_descriptor hashing[] = {
        {"sampleDigests", nullptr, SampleDigests, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"sha256Prefix32", nullptr, Sha256Prefix32, nullptr, nullptr, nullptr, napi_default, nullptr},
    };
    napi_define_properties(env, exports, sizeof(hashing) / sizeof(hashing[0]), hashing);
  }
#endif
  return exports;
}
