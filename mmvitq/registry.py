"""mmvitq's registries: MODELS (scope 'mmvitq', child of mmengine's, so `type='mmvitq.X'` resolves from
mmpretrain and mmdet configs), QUANTIZERS, a child of it that holds only quantizers, OBSERVERS (the range
observers and LSQ inits a quantizer names: `observer='mse'`, `init='lsq'`) and RUNNERS (for
`runner_type='mmvitq.Runner'`)."""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import Registry


def build_quantizer(cfg: dict, registry: Registry) -> object:
    """Build from `registry` itself: mmengine's default would switch to the current default scope's
    model registry (mmpretrain's, mmdet's), which holds no quantizers."""
    args = dict(cfg)
    quantizer_type = args.pop('type')
    cls = registry.get(quantizer_type)
    if cls is None:
        raise KeyError(f'{quantizer_type!r} is not a quantizer; registered: {sorted(registry.module_dict)}')
    return cls(**args)


MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmvitq', locations=['mmvitq.models.backbones'])
QUANTIZERS = Registry('quantizer', parent=MODELS, scope='mmvitq', build_func=build_quantizer,
                      locations=['mmvitq.quantizers'])
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, scope='mmvitq', locations=['mmvitq.engine'])
OBSERVERS = Registry('observer', scope='mmvitq', locations=['mmvitq.quantizers'])
