"""Prompts shared by the LLM judge and the local judge (METHODS §1: concrete, actionable hints that
never reveal the answer; the critique is the text after "Critique:"), and the revision / FM prompts."""
from __future__ import annotations

JUDGE_SYSTEM = (
    "You are an expert teacher reviewing a student's attempt at a problem. You are given the problem, "
    "the reference answer (for you only), and the student's attempt. Point out concretely what is wrong "
    "and where (which step, line, cell or statement), and give an actionable hint. NEVER reveal the "
    "reference answer or any part of it, and do not write a corrected solution. Reply in the form:\n"
    "Analysis: <your private reasoning>\nCritique: <two or three sentences addressed to the student>"
)

JUDGE_USER = (
    "Problem:\n{question}\n\nReference answer (do not reveal): {reference}\n\n"
    "Student's attempt:\n{answer}\n\nGrader's verdict: {verdict}\n\n"
    "Write your reply in the required form, ending with 'Critique:' followed by the critique."
)

RATE_SYSTEM = (
    "You are a strict evaluator. Rate the response to the user's request on a scale from 0 to 10 "
    "for correctness, helpfulness and faithfulness to the reference when one is given. "
    "Reply in the form:\nCritique: <two sentences on what is wrong or missing>\nScore: <integer 0-10>"
)

RATE_USER = "Request:\n{question}\n\nReference (may be empty):\n{reference}\n\nResponse:\n{answer}"

REVISION_TEMPLATE = (
    "{question}\n\n"
    "Your previous solution:\n{answer}\n\n"
    "Expert critique of your previous solution:\n{critique}\n\n"
    "Write a fresh, complete solution to the problem above. Use the critique to fix the mistakes, "
    "but do not mention the critique or your previous solution."
)

# SDPO's teacher context (METHODS §3.1, TRL's strings): the question, then a successful sibling answer
# and/or the critique of this answer (never the answer itself), then the closing instruction.
SDPO_SOLUTION = "\nCorrect solution:\n\n{solution}\n\n"
SDPO_FEEDBACK = "\nThe following is feedback from your unsuccessful earlier attempt:\n\n{critique}\n\n"
SDPO_CLOSING = "\n\nCorrectly solve the original question.\n"

# Alternatives for models that copy the paper prompt's labels ("Expert critique: ...") instead of
# revising (issue 16): a plainer wording, and the feedback as the next user turn of the chat.
PLAIN_REVISION_TEMPLATE = (
    "{question}\n\n"
    "A first attempt:\n{answer}\n\n"
    "Feedback on it: {critique}\n\n"
    "Now solve the problem correctly."
)
CHAT_REVISION_TURN = "{critique}\n\nPlease solve the problem again, correctly."
REVISION_PROMPTS = ("paper", "plain", "chat")  # chat: [question, answer, feedback turn] instead of one message

FM_TEMPLATE = (
    "{question}\n\n"
    "A previous attempt at this problem:\n{answer}\n\n"
    "Write a short expert critique of this attempt: say concretely what is wrong and where, "
    "without giving away the answer."
)

# Dual feedback (METHODS §2.1): a critique AND the spans of the answer it refers to, as JSON.
SPAN_JUDGE_SYSTEM = (
    "You are a careful reviewer. Read the task and the response, then return ONLY a JSON object:\n"
    '{"textual_feedback": "<one-paragraph critique: what is wrong or missing and what is good>",\n'
    ' "good_spans": ["<exact phrase copied from the response>", ...],\n'
    ' "poor_spans": ["<exact phrase copied from the response>", ...]}\n'
    "Use 0-2 good and 0-2 poor phrases. Every phrase must be copied verbatim from the response. "
    "Do not reveal the reference answer in the feedback."
)
SPAN_JUDGE_USER = "Task:\n{question}\n\nReference (for you only, may be empty):\n{reference}\n\nResponse:\n{answer}"

CODE_SPAN_JUDGE_SYSTEM = (
    "You are a senior engineer reviewing a solution that was run against unit tests. Return ONLY a JSON object:\n"
    '{"feedback": "<one-paragraph critique of the code, based on the test log>",\n'
    ' "wrong_code": ["<exact line copied from the code that makes a test fail>", ...],\n'
    ' "improvement_code": ["<exact line copied from the code that works but could be better>", ...]}\n'
    "Quote lines verbatim; use empty lists when nothing applies. Do not write the corrected code."
)
CODE_SPAN_JUDGE_USER = "Task:\n{question}\n\nCode:\n{answer}\n\nTest log:\n{test_log}"
