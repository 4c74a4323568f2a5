"""The text to send a model for a calibration prompt: its task's question format, as in LLMRouter.

The bundled prompt texts are bare questions: a multiple-choice question without its options, an
MBPP task without its tests. The graders expect the answer format the question asked for (a letter
in parentheses, ``\\boxed{}``, ``[BEGIN] ... [Done]``), so a model being calibrated must be asked
the same way. These formats follow the query templates in LLMRouter's
``llmrouter/utils/prompting.py`` (commit 4e7a796942ce, MIT, see ``data/_bundled/NOTICE.md``)
word for word, because another wording would make a new model's scores incomparable with the
recorded ones. Tasks that file has no template for (agentverse-mgsm, agentverse-logicgrid,
commongen) are sent as they are: their texts carry their own instructions, or none. Whether the
recorded answers were generated with exactly these templates is not recorded in the data; they
are the ones LLMRouter's pipeline sends.
"""

from __future__ import annotations

from polyroute.data.references import Reference
from polyroute.errors import DataError

_MC = ("Answer the following multiple-choice question by selecting the correct option (A, B, C, "
       "or D). You Must put your final answer letter in a parenthesis.\n\n## Question:\n"
       "{question}\n\n## Options:\n{options}\n")
_LABELLED_MC = ("\n    Answer the following multiple-choice question by selecting the correct "
                "option. You Must put your final answer letter in a parenthesis.\n\n"
                "    Question: {question} \n\n    ")
_GSM8K = "\n    Answer the following question.\n\n    Question: {question}\n    "
_MATH = ("\n    Answer the following question. Make sure to put the answer ( and only answer ) "
         "inside \\boxed{{}}.\n\n    Question: {question}\n    ")
_MBPP = ("You are an expert Python programmer, and here is your task: {question} Your code should "
         "pass these tests:\n\n{tests}\n Implement the function (no irrelevant words or "
         "comments) in this format: [BEGIN] <Your Code> [Done]\n")
_HUMANEVAL = ("You are an expert Python programmer. Complete the following function:\n\n"
              "            {question}\n\n            Implement the function body only. Do not "
              "repeat the function signature or docstring.\n            Put the code in this "
              "format: [BEGIN] <Your Code - function body only> [Done]\n            ")


def task_prompt(reference: Reference) -> str:
    """The message to send for ``reference``'s prompt (its ``prompt`` text must be attached)."""
    if reference.prompt is None:
        raise DataError(f"prompt {reference.prompt_id!r}: no prompt text attached to its reference")
    question, task, choices = reference.prompt, reference.task, reference.choices
    if task in ("mmlu", "gpqa") and choices is not None:
        options = "".join(f"{label}. {text}\n" for label, text in zip(choices.labels, choices.texts,
                                                                      strict=True))
        return _MC.format(question=question, options=options)
    if task in ("commonsense_qa", "openbook_qa", "arc_challenge") and choices is not None:
        listed = "".join(f"\n({label}) {text}" for label, text in zip(choices.labels, choices.texts,
                                                                      strict=True))
        return _LABELLED_MC.format(question=question) + listed
    if task == "gsm8k":
        return _GSM8K.format(question=question)
    if task == "math":
        return _MATH.format(question=question)
    if task == "mbpp" and isinstance(reference.ground_truth, tuple):
        return _MBPP.format(question=question, tests="\n".join(reference.ground_truth))
    if task == "human_eval":
        return _HUMANEVAL.format(question=question)
    return question
