"""Which blessed model a candidate is compared with."""

from tfx import v1 as tfx


class LatestBlessedBaselineStrategy(tfx.dsl.experimental.ResolverStrategy):
    """The newest blessed model other than the candidate being evaluated.

    TFX's LatestBlessedModelStrategy would hand an unchanged re-run its own (cached) model as
    the baseline: Evaluator's inputs change, it re-runs, and Pusher pushes the same model again
    as a new version. Excluding the candidate keeps such a re-run fully cached.
    """

    def resolve_artifacts(self, store, input_dict):
        candidate_ids = {model.id for model in input_dict["candidate"]}
        blessings = {
            blessing.get_int_custom_property("current_model_id"): blessing
            for blessing in input_dict["model_blessing"]
            if blessing.get_int_custom_property("blessed") == 1
        }
        result = {"model": [], "model_blessing": [], "candidate": input_dict["candidate"]}
        for model in sorted(input_dict["model"], key=lambda m: m.id, reverse=True):
            if model.id in blessings and model.id not in candidate_ids:
                result.update(model=[model], model_blessing=[blessings[model.id]])
                break
        return result
