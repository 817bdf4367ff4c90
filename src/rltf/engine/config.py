"""The config fields the engine reads: :class:`RunConfig` (every training run) and
:class:`TrainConfig` (every run that trains a policy on a task). Each method's config dataclass
(in its file of :mod:`rltf.methods`) inherits one of them and adds its own fields. Every field's
``help`` is both the CLI help and the YAML schema.

Defaults follow METHODS §1 (Adam betas 0.9/0.95, temperature 1.0, group size 8, 32 prompts per
step, lr 2e-5), except where a CPU recipe overrides them.
"""
from __future__ import annotations

from dataclasses import dataclass

from rltf.algorithms.importance import IS_MODES
from rltf.algorithms.losses import AGGREGATIONS
from rltf.feedback import KINDS as FEEDBACK_KINDS
from rltf.feedback.prompts import REVISION_PROMPTS
from rltf.models.backend import AUTO_MIN_TOKENS, BACKENDS
from rltf.engine.config_fields import arg

SCHEDULERS = ("constant", "linear", "cosine")


@dataclass
class RunConfig:
    """Fields every training run has (what :class:`rltf.engine.loop.TrainingRun` reads): the model,
    the optimizer and its schedule, LoRA, checkpoints and logging."""

    method: str = arg("", "training method (set by the command)")
    model: str = arg("smollm2-135m", "the model to train: smollm2-135m, tiny-random, a local directory or a hub id")
    output_dir: str = arg("runs/train", "where checkpoints, metrics.jsonl and TensorBoard logs go")
    seed: int = arg(0, "seed of the data order, sampling, LoRA init and model init (tiny-random)", ge=0)
    learning_rate: float = arg(2e-5, "peak learning rate (Adam)", ge=0)
    adam_beta1: float = arg(0.9, "Adam beta1", ge=0, lt=1)
    adam_beta2: float = arg(0.95, "Adam beta2", ge=0, lt=1)
    adam_epsilon: float = arg(1e-8, "Adam epsilon", gt=0)
    weight_decay: float = arg(0.0, "decoupled weight decay (AdamW)", ge=0)
    lr_scheduler: str = arg("constant", "constant, linear or cosine decay after warm-up", choices=SCHEDULERS)
    warmup_steps: int = arg(0, "linear warm-up steps", ge=0)
    max_grad_norm: float = arg(1.0, "gradient clipping by global norm (0 = off)", ge=0)
    micro_batch_size: int = arg(16, "sequences per forward/backward; gradients accumulate over micro-batches", ge=1)
    micro_batch_tokens: int = arg(0, "also cap each micro-batch at this many token positions through the model "
                                     "(shared prompt prefix once, rows padded to the longest): bounds activation "
                                     "memory when rows are long (two-turn revisions, critiques); 0 = no cap", ge=0)
    micro_batch_order: str = arg("planned", "planned: each loss term's rows in the micro-batches that run on the fewest "
                                            "token positions (each turn together, each problem adjacent); collected: "
                                            "collection order, micro_batch_size rows at a time, no token cap (rltf before "
                                            "2026-12-04: reproduces older runs bit for bit). The same gradients either way",
                                 choices=("planned", "collected"))
    dtype: str = arg("auto", "weights dtype: auto (CUDA: bf16; CPU: fp32 weights, with bf16 autocast where this "
                             "CPU's bf16 matmul measures >= 1.5x fp32's at the model's shape; logged at start), "
                             "float32, bfloat16")
    bf16_autocast: bool = arg(False, "bf16 autocast for forward and backward matmuls over fp32 master weights "
                                     "(also the vLLM engine's dtype); auto may turn it on, see dtype")
    device: str = arg("auto", "auto, cpu, cuda, cuda:N")
    use_lora: bool = arg(False, "train LoRA adapters (PEFT) instead of all weights")
    lora_r: int = arg(32, "LoRA rank (the paper: 32)", ge=1)
    lora_alpha: int = arg(64, "LoRA alpha", gt=0)
    lora_dropout: float = arg(0.0, "LoRA dropout", ge=0, lt=1)
    lora_target_modules: str = arg("q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
                                   "comma-separated module names that get adapters")
    save_every: int = arg(10, "checkpoint every this many steps (0 = only at the end)", ge=0)
    save_total_limit: int = arg(2, "checkpoints kept (older ones are deleted)", ge=1)
    report_to: str = arg("none", "extra loggers, comma-separated: tensorboard, wandb, trackio")
    run_name: str | None = arg(None, "name shown by W&B/trackio (default: output_dir's name)")
    backend: str = arg("auto", "generation backend: hf (transformers), vllm (pip install 'rltf[vllm]'; weights "
                               "synced after every optimizer step), or auto (vllm when installed and the run "
                               f"generates at least {AUTO_MIN_TOKENS} tokens, else hf)", choices=BACKENDS)
    vllm_kv_cache_gb: float | None = arg(None, "vLLM on CPU: memory of its KV cache in GiB (requests that do not fit "
                                               "wait); default: room for one rollout's sequences", gt=0)
    vllm_gpu_memory_utilization: float = arg(0.3, "vLLM on CUDA: share of GPU memory for its weights and KV cache "
                                                  "(the trainer needs the rest)", gt=0, le=1)
    vllm_max_model_len: int = arg(4096, "vLLM: longest prompt + completion in tokens (capped by the model's limit)",
                                  ge=16)
    vllm_enforce_eager: bool | None = arg(None, "vLLM: run without compiled graphs (default: eager on CPU, where "
                                                "compiling takes ~80 s at start for about a fifth more tokens/s; "
                                                "graphs on CUDA)")
    vllm_sleep: bool = arg(True, "vLLM on CUDA: free the engine's memory while the trainer steps (sleep mode)")

    def check(self) -> None:
        """Checks between fields, run once every field is inside its own range or choices (a
        method's config overrides it, e.g. SDPO: ``distill: sampled_token`` needs ``alpha: 1``)."""


@dataclass
class TrainConfig(RunConfig):
    """Fields of every run that trains a policy on a task (what :class:`rltf.engine.Engine` reads)."""

    task: str = arg("add2", "task spec, e.g. add2, knights_knaves, rg:leg_counting?min_animals=2, or "
                            "path/to/file.py:MyTask (a Task of your own); ?reward=file.py:fn replaces the reward")
    feedback: str = arg("critic", "critique provider: critic, correctness, judge, local, self, human (stored "
                                  "critiques of people, see human_feedback), or path/to/file.py:Name "
                                  "(a FeedbackProvider of your own)", choices=FEEDBACK_KINDS, plugin=True)
    judge_url: str | None = arg(None, "base URL of an OpenAI-compatible judge (feedback=judge)")
    judge_model: str | None = arg(None, "model name sent to the judge endpoint")
    judge_key_env: str = arg("OPENAI_API_KEY", "environment variable holding the judge API key")
    judge_cache: str | None = arg(None, "SQLite file caching judge replies")
    judge_timeout: float = arg(60.0, "seconds per judge request", gt=0)
    judge_concurrency: int = arg(8, "judge requests in flight at once", ge=1)
    judge_retries: int = arg(3, "judge retries on 429/5xx/timeouts, with backoff", ge=0)
    max_feedback_failure_rate: float = arg(0.5, "stop the run, after saving a checkpoint, when more than this "
                                                "share of a step's critiques failed (judge down, timeouts, "
                                                "rejected replies; each failed one is replaced by correctness-only "
                                                "feedback); carry on with --resume once the judge is back. "
                                                "1 = never stop", ge=0, le=1)
    human_feedback: str | None = arg(None, "annotation records (JSONL, from `rltf label-studio import`) served by "
                                           "feedback=human; a task of them: task=human:FILE")
    max_steps: int = arg(100, "optimizer steps", ge=1)
    max_generated_tokens: int = arg(0, "also stop once this many tokens were generated (0 = off): "
                                       "the fair budget when comparing one- and two-turn methods", ge=0)
    prompts_per_step: int = arg(32, "prompts sampled per step (the paper: 32)", ge=1)
    group_size: int = arg(8, "answers sampled per prompt, N (the paper: 8)", ge=1)
    temperature: float = arg(1.0, "sampling temperature of both turns", ge=0)
    top_p: float = arg(1.0, "nucleus sampling", gt=0, le=1)
    max_new_tokens: int | None = arg(None, "generation budget per turn (default: the task's)", ge=1)
    loss_aggregation: str = arg("sum", "sum (METHODS), token-mean, or seq-mean-token-mean", choices=AGGREGATIONS)
    kl_coef: float = arg(0.0, "KL penalty to the initial policy (METHODS: 0)", ge=0)
    gradient_checkpointing: bool = arg(False, "recompute activations in backward to save memory")
    generation_batch_size: int = arg(64, "conversations generated together", ge=1)
    eval_every: int = arg(10, "held-out evaluation every this many steps (0 = only at the end)", ge=0)
    eval_at_tokens: str = arg("", "also evaluate at the first step whose cumulative generated tokens reach each of "
                                  "these comma-separated budget points (rltf compare)")
    eval_n: int = arg(64, "held-out prompts per evaluation", ge=1)
    eval_rounds: int = arg(1, "K > 1 also measures K-round self-critique accuracy (FM use)", ge=1)
    revision_prompt: str = arg("paper", "how a revision is asked for, in training and evaluation: paper (METHODS "
                                        "§1: a new message with the question, the answer and an 'Expert critique'), "
                                        "plain (the same, plainer wording) or chat (the answer as the assistant's "
                                        "turn, the critique as the next user turn)", choices=REVISION_PROMPTS)
    eval_feedback: str = arg("", "comma-separated feedback kinds (e.g. critic,correctness): at each evaluation, "
                                 "also revise the wrong greedy answers once with each and log the fix rate "
                                 "eval/fix_rate/KIND; with critic and correctness, eval/revision_use = the "
                                 "difference: how much the critique's content helps beyond 'your answer was "
                                 "incorrect'; eval/verbatim/KIND = the share of them the revision hands back "
                                 "word for word")
    eval_drafts: bool = arg(False, "with eval_feedback: also revise the INITIAL policy's wrong greedy answers "
                                   "(its drafts, recorded at the evaluation before step 1) with each feedback kind: "
                                   "eval/draft_fix_rate/KIND and eval/draft_revision_use. Unlike the policy's own "
                                   "wrong answers these stay the same over training, and remain when it no "
                                   "longer errs")
    eval_feedback_at: str = arg("all", "which evaluations revise with eval_feedback: all, or last (only the run's "
                                       "last evaluation; the others measure single-turn accuracy only, at a "
                                       "fraction of the cost: revisions are most of a long study's evaluation "
                                       "time). With eval_drafts, the drafts are still recorded before step 1",
                                choices=("all", "last"))
    eval_at_start: bool = arg(True, "evaluate the initial policy before step 1")
    importance_sampling: str = arg("token_truncate", "correction of vLLM rollouts for the sampler/trainer mismatch: "
                                                     "per-token or per-sequence ratio pi_train/pi_sampler, truncated "
                                                     "at the cap or masked above it (off: none); the HF backend "
                                                     "samples from the trained model itself and needs none",
                                   choices=IS_MODES)
    importance_sampling_cap: float = arg(3.0, "upper bound of the importance ratio (truncate) or the ratio above "
                                              "which tokens/sequences are dropped (mask)", gt=0)
