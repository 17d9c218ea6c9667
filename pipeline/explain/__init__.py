"""Why a lead got its score: exact SHAP values (our TreeSHAP kernel or LightGBM's), checked for
additivity, grouped by the field a rep knows and worded from an editable templates file."""
