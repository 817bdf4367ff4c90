"""One config dataclass per method. Every field's ``help`` is both the CLI help and the YAML schema.

Defaults follow METHODS §1 (gamma 0.1, lambda_SD 0.1, lambda_FM 0.1, Adam betas 0.9/0.95,
temperature 1.0, group size 8, 32 prompts per step, lr 2e-5), except where a CPU recipe
overrides them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rltf.algorithms.importance import IS_MODES
from rltf.algorithms.losses import AGGREGATIONS, SD_MODES
from rltf.algorithms.distill import SDPO_MODES, TEACHERS
from rltf.algorithms.refinement import REFINE_WHEN
from rltf.feedback import KINDS as FEEDBACK_KINDS
from rltf.feedback import SPAN_KINDS
from rltf.feedback.prompts import REVISION_PROMPTS
from rltf.models.backend import AUTO_MIN_TOKENS, BACKENDS
from rltf.trainers.config_fields import arg, config_from_recipe

SCHEDULERS = ("constant", "linear", "cosine")
SD_BASELINES = ("first", "second")
KL_ESTIMATORS = ("full", "kl")
SCALAR_SCORES = ("span_sum", "task")


@dataclass
class RunConfig:
    """Fields every training run has (what :class:`rltf.trainers.loop.TrainingRun` reads): the model,
    the optimizer and its schedule, LoRA, checkpoints and logging."""

    method: str = arg("grpo", "training method (set by the command)")
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
    dtype: str = arg("auto", "weights dtype: auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16")
    bf16_autocast: bool = arg(False, "bf16 autocast for forward passes with fp32 master weights")
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


@dataclass
class TrainConfig(RunConfig):
    """Fields shared by every RL trainer."""

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
    eval_at_start: bool = arg(True, "evaluate the initial policy before step 1")
    importance_sampling: str = arg("token_truncate", "correction of vLLM rollouts for the sampler/trainer mismatch: "
                                                     "per-token or per-sequence ratio pi_train/pi_sampler, truncated "
                                                     "at the cap or masked above it (off: none); the HF backend "
                                                     "samples from the trained model itself and needs none",
                                   choices=IS_MODES)
    importance_sampling_cap: float = arg(3.0, "upper bound of the importance ratio (truncate) or the ratio above "
                                              "which tokens/sequences are dropped (mask)", gt=0)


@dataclass
class RLTFFamilyConfig(TrainConfig):
    """Fields of the GRPO/RLTF family (group advantages over N samples per prompt), not of PPO."""

    gradient_accumulation_steps: int = arg(1, "rollout batches accumulated per optimizer step", ge=1)
    std_normalize: bool = arg(False, "divide group-centred advantages by the group's std (GRPO style)")


@dataclass
class GRPOConfig(RLTFFamilyConfig):
    """Single-turn GRPO: N samples per prompt, group-centred scalar reward."""

    method: str = arg("grpo", "training method (set by the command)")


@dataclass
class MultiTurnGRPOConfig(RLTFFamilyConfig):
    """Two-turn episodes with only the multi-turn RL term."""

    method: str = arg("multiturn-grpo", "training method (set by the command)")
    gamma: float = arg(0.1, "discount of the second turn's reward in G0 = r0 + gamma * r1", ge=0, le=1)
    revision_bonus: float = arg(0.0, "SCoRe's alpha: the revision's return becomes r1 + alpha * (r1 - r0), so a "
                                     "revision that repeats its first answer gains nothing and one that breaks a "
                                     "right answer loses (0 = off; SCoRe: 10)", ge=0)
    first_turn_kl: float = arg(0.0, "SCoRe's anchor: a KL penalty to the initial policy on FIRST-turn tokens only, "
                                    "added to kl_coef (SCoRe Stage I: 0.1), so the first answer cannot drift to "
                                    "game the revision bonus (0 = off)", ge=0)
    revise_correct: bool = arg(False, "also critique and revise correct first answers (SCoRe: every episode gets a "
                                      "second turn, so breaking a right answer is seen and penalised)")
    score_stage1_steps: int = arg(0, "SCoRe Stage I: for this many first steps the first turn gets no return "
                                     "(only its KL anchor) and training improves the revision alone", ge=0)


@dataclass
class RLTFSDConfig(MultiTurnGRPOConfig):
    """Multi-turn RL + self-distillation of revisions into the single-turn policy."""

    method: str = arg("rltf-sd", "training method (set by the command)")
    lambda_sd: float = arg(0.1, "weight of the SD term", ge=0)
    sd_ramp_steps: int = arg(0, "ramp lambda_sd linearly from 0 over this many steps (0 = no ramp)", ge=0)
    sd_mode: str = arg("awr", "awr (method), clipped_is or rejection (ablations)", choices=SD_MODES)
    sd_baseline: str = arg("first", "first-turn baseline b0 (method) or second (ablation)", choices=SD_BASELINES)
    sd_mask_threshold: float = arg(-5.0, "y1 tokens with log pi(y1_t|x0) below this get advantage 0", le=0)


@dataclass
class RLTFFMConfig(MultiTurnGRPOConfig):
    """Multi-turn RL + feedback modelling: predict the critique as an auxiliary loss."""

    method: str = arg("rltf-fm", "training method (set by the command)")
    critique_max_tokens: int = arg(128, "longest critique kept as an FM target, in tokens", ge=1)
    fm_train_on_fallback: bool = arg(False, "also train the FM term on fallback critiques (the correctness-only "
                                            "text that stands in when a judge failed); off: they are left out "
                                            "and counted as fm/fallback_critiques")
    lambda_fm: float = arg(0.1, "weight of the FM term", ge=0)
    offline_data: str | None = arg(None, "annotation records (JSONL from `rltf label-studio import` or `rltf "
                                         "annotate`): train the FM term on their stored answers and people's "
                                         "critiques instead of sampling (offline RLTF-FM; the RL term needs samples "
                                         "and is off); held-out evaluation still uses task")


@dataclass
class RLTFSDFMConfig(RLTFSDConfig, RLTFFMConfig):
    """Both auxiliary terms."""

    method: str = arg("rltf-sd+fm", "training method (set by the command)")


@dataclass
class SDPOConfig(RLTFFamilyConfig):
    """SDPO-style self-distillation (METHODS §3.1): a feedback-conditioned self-teacher.

    The policy shown the critique (and a successful sibling answer) is the teacher of the policy
    without it, on the student's own answers."""

    method: str = arg("sdpo", "training method (set by the command)")
    distill: str = arg("sampled_token", "what is distilled at each answer token: sampled_token (the sampled "
                                        "token's log-ratio, TRL's default; today's RLTF-SD signal), full_logits "
                                        "(the whole next-token distribution) or topk_logits (the student's top-k)",
                       choices=SDPO_MODES)
    alpha: float = arg(1.0, "divergence: 1 reverse KL(student||teacher) (the paper), 0 forward KL, 0.5 "
                            "Jensen-Shannon (the official code); sampled_token needs 1", ge=0, le=1)
    topk: int = arg(100, "k of topk_logits (the official code: 100)", ge=1)
    topk_tail: bool = arg(False, "topk_logits: add a bucket for the mass outside the top k (the official code)")
    teacher: str = arg("ema", "the teacher's weights: ema (an exponential moving average of the policy, TRL's "
                              "default), initial (the frozen initial policy) or live (the current policy: "
                              "unregularised, diverged in the paper)", choices=TEACHERS)
    ema_rate: float = arg(0.05, "EMA teacher update: theta_T <- (1 - rate) theta_T + rate theta after each step",
                          gt=0, le=1)
    sd_weight: float = arg(1.0, "w in (1 - w) L_GRPO + w L_SD (TRL: 1, pure self-distillation); with distill: "
                                "sampled_token this is the paper's hybrid advantage lam A_GRPO + (1 - lam) "
                                "(log q - log p) with lam = 1 - w (the paper's lam 0.9 for small models = w 0.1)",
                           ge=0, le=1)
    is_clip: float = arg(2.0, "cap of the importance weight exp(log pi - log pi_sampler) on each token (0 = off)",
                         ge=0)
    success_threshold: float = arg(1.0, "a sibling answer with reward >= this is shown to the teacher as a "
                                        "correct solution (task rewards are at most 1)", ge=-1e3, le=1e3)
    teacher_feedback: bool = arg(True, "show the teacher the critique of a wrong answer")
    teacher_solution: bool = arg(True, "show the teacher a successful sibling answer (never the answer itself)")
    loss_aggregation: str = arg("seq-mean-token-mean", "seq-mean-token-mean (TRL), sum or token-mean",
                                choices=AGGREGATIONS)


@dataclass
class CritiqueGRPOConfig(RLTFFamilyConfig):
    """Critique-GRPO (METHODS §3.2): critique-guided refinements join the group of first answers."""

    method: str = arg("critique-grpo", "training method (set by the command)")
    group_size: int = arg(8, "group size N = first answers n + refinements k per prompt (the paper: 7 + 1)", ge=2)
    refinements: int = arg(1, "refinements k per prompt that join the group (the paper: 1; n = group_size - k)", ge=1)
    refine_when: str = arg("all_wrong", "which first answers get a critique and a refinement: all_wrong (only prompts "
                                        "whose n answers all failed: the paper), wrong_only (every wrong answer), "
                                        "always (every answer: the official code)", choices=REFINE_WHEN)
    shaping_gamma: float = arg(0.1, "gamma of the refinement tokens' shaping f(p) = p / (p + gamma)", gt=0)
    clip_eps: float | None = arg(None, "PPO-style clip of both weights (None: no clipping, the authors' run script)",
                                 gt=0)


@dataclass
class SpanPPOConfig(TrainConfig):
    """Text2Grad span-level PPO: critique spans become per-token rewards; PPO with a value head and GAE."""

    method: str = arg("span-ppo", "training method (set by the command)")
    feedback: str = arg("critic", "who labels spans: critic (programmatic), judge (OpenAI-compatible endpoint), "
                                  "local (local judge model), reward-model (a trained span reward model), "
                                  "human (people's stored spans, see human_feedback)",
                        choices=SPAN_KINDS, plugin=True)
    reward_model: str | None = arg(None, "directory of a span reward model (feedback=reward-model)")
    prompts_per_step: int = arg(32, "prompts sampled per step (the reference: batch 32)", ge=1)
    group_size: int = arg(1, "answers sampled per prompt", ge=1)
    temperature: float = arg(0.6, "sampling temperature (the reference: 0.6)", ge=0)
    top_p: float = arg(0.9, "nucleus sampling (the reference: 0.9)", gt=0, le=1)
    learning_rate: float = arg(1e-5, "policy learning rate (the reference: 1e-5)", ge=0)
    value_learning_rate: float | None = arg(None, "value head learning rate (default: learning_rate)", ge=0)
    kl_coef: float = arg(0.2, "initial KL coefficient beta (the reference: 0.2)", ge=0)
    kl_estimator: str = arg("full", "full (KL over the whole vocabulary) or kl (logp - logp_ref of the sampled token)",
                            choices=KL_ESTIMATORS)
    kl_target: float | None = arg(6.0, "adaptive KL target per sequence (None = fixed beta)", gt=0)
    kl_horizon: int = arg(10_000, "adaptive KL horizon, in sequences", ge=1)
    gamma: float = arg(1.0, "GAE discount (the reference: 1)", ge=0, le=1)
    lam: float = arg(0.95, "GAE lambda (the reference: 0.95)", ge=0, le=1)
    clip_eps: float = arg(0.2, "PPO policy ratio clip (the reference: 0.2)", gt=0)
    value_clip: float = arg(0.2, "value clip around the rollout's values (the reference: 0.2)", gt=0)
    vf_coef: float = arg(0.1, "weight of the value loss (the reference: 0.1)", ge=0)
    ppo_epochs: int = arg(4, "passes over each rollout batch (the reference: 4)", ge=1)
    mini_batch_size: int = arg(8, "sequences per optimizer step within a PPO epoch", ge=1)
    whiten_advantages: bool = arg(True, "whiten advantages over the batch's response tokens")
    length_weight: bool = arg(False, "weight token rewards by 1/(1+exp(alpha(t-L0)-6)) (long summaries)")
    length_alpha: float = arg(1.0, "alpha of the length weight", gt=0)
    length_l0: float = arg(48.0, "suggested length L0 of the length weight, in tokens", gt=0)
    scalar_score: str = arg("span_sum", "scalar-ppo's sequence score: span_sum (sum of located span labels) or "
                                        "task (the task's reward)", choices=SCALAR_SCORES)
    min_parsed_fraction: float = arg(0.5, "skip the update when fewer answers than this got usable span feedback",
                                     ge=0, le=1)
    loss_aggregation: str = arg("token-mean", "token-mean (PPO default), sum or seq-mean-token-mean",
                                choices=AGGREGATIONS)
    lora_r: int = arg(16, "LoRA rank (the reference: 16)", ge=1)
    lora_alpha: int = arg(32, "LoRA alpha (the reference: 32)", gt=0)


@dataclass
class ScalarPPOConfig(SpanPPOConfig):
    """The scalar-reward PPO baseline: the same PPO, with the sequence score on the last token only."""

    method: str = arg("scalar-ppo", "training method (set by the command)")


@dataclass
class RewardModelConfig(RunConfig):
    """Supervised fine-tuning of a generative span-level reward model on annotation records."""

    method: str = arg("reward-model", "training method (set by the command)")
    train_data: str = arg("annotations.jsonl", "annotation records (rltf annotate output, or prompt/answer/critique/"
                                               "spans JSONL; good_spans/poor_spans or word_score_list also read)")
    eval_data: str | None = arg(None, "held-out records scored at the end (span F1, parse failures)")
    eval_n: int = arg(64, "held-out records scored at the end (0 = all)", ge=0)
    output_dir: str = arg("runs/reward-model", "where checkpoints and metrics.jsonl go")
    epochs: int = arg(3, "passes over the data (the reference: 3)", ge=1)
    batch_size: int = arg(8, "records per optimizer step", ge=1)
    micro_batch_size: int = arg(8, "records per forward/backward", ge=1)
    learning_rate: float = arg(5e-5, "peak learning rate (the reference, with LoRA on 8B: 1e-5)", ge=0)
    lr_scheduler: str = arg("linear", "constant, linear or cosine decay after warm-up", choices=SCHEDULERS)
    warmup_steps: int = arg(5, "linear warm-up steps", ge=0)
    adam_beta2: float = arg(0.999, "Adam beta2", ge=0, lt=1)
    max_target_tokens: int = arg(256, "longest JSON target kept, in tokens", ge=1)
    max_new_tokens: int = arg(256, "generation budget when scoring held-out records", ge=1)
    lora_r: int = arg(16, "LoRA rank (the reference: 16)", ge=1)
    lora_alpha: int = arg(32, "LoRA alpha (the reference: 32)", gt=0)
    lora_target_modules: str = arg("q_proj,v_proj", "comma-separated module names with adapters (the reference: q, v)")
    save_every: int = arg(0, "checkpoint every this many optimizer steps (0 = at the end of each epoch)", ge=0)


def make_rm_config(recipe: str | None = None, overrides: dict[str, Any] | None = None) -> RewardModelConfig:
    """The reward model's config (defaults < YAML recipe < overrides)."""
    return config_from_recipe(RewardModelConfig, "reward-model", recipe, overrides)
