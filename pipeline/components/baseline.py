"""Which blessed model a candidate is compared with."""

from tfx import v1 as tfx


class LatestBlessedBaselineStrategy(tfx.dsl.experimental.ResolverStrategy):
    """The champion of the candidate's time: the newest blessed model older than the candidate.

    TFX's LatestBlessedModelStrategy would hand an unchanged re-run its own (cached) model as
    the baseline: Evaluator's inputs change, it re-runs, and Pusher pushes the same model again
    as a new version. Excluding the candidate keeps such a re-run fully cached. Excluding models
    trained after it too (ML Metadata ids grow with time) keeps a second replay of earlier
    months fully cached, and never makes a candidate's baseline a model that trained on the
    candidate's evaluation month.
    """

    def resolve_artifacts(self, store, input_dict):
        candidate_ids = {model.id for model in input_dict["candidate"]}
        oldest_candidate = min(candidate_ids, default=None)
        blessings = {
            blessing.get_int_custom_property("current_model_id"): blessing
            for blessing in input_dict["model_blessing"]
            if blessing.get_int_custom_property("blessed") == 1
        }
        result = {"model": [], "model_blessing": [], "candidate": input_dict["candidate"]}
        for model in sorted(input_dict["model"], key=lambda m: m.id, reverse=True):
            older = oldest_candidate is None or model.id < oldest_candidate
            if model.id in blessings and older:
                result.update(model=[model], model_blessing=[blessings[model.id]])
                break
        return result
