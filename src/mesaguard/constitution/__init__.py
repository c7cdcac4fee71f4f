"""The constitution: a versioned YAML policy of articles and CEL rules, and its evaluation.

```python
from mesaguard.constitution import Constitution, PolicyInput, default_constitution

constitution = Constitution.load("constitution.yaml")   # errors name line and column
evaluation = constitution.evaluate(PolicyInput(decision={"action": "set_priority", ...}))
evaluation.effect, [hit.rule_id for hit in evaluation.hits]
```
"""

from ._document import Article, Constitution, Rule, default_constitution
from ._errors import ConstitutionError
from ._policy import (
    ChangeFacts,
    DecisionFacts,
    Effect,
    Evaluation,
    ItemFacts,
    PolicyInput,
    RuleCheck,
    RuleHit,
    combine,
)

__all__ = [
    "Article",
    "ChangeFacts",
    "Constitution",
    "ConstitutionError",
    "DecisionFacts",
    "Effect",
    "Evaluation",
    "ItemFacts",
    "PolicyInput",
    "Rule",
    "RuleCheck",
    "RuleHit",
    "combine",
    "default_constitution",
]
