"""gatedvision's registry nodes, children of mmengine's root registries (scope ``gatedvision``).

A config in any scope can name a gatedvision module as ``type='gatedvision.Name'``: mmengine then
imports this module and finds the child registry by its scope, so no ``custom_imports`` is needed.
Configs with ``default_scope='gatedvision'`` (restoration, medical segmentation) find mmengine's own
modules through the parents.
"""
from mmengine import registry as root
from mmengine.registry import Registry

# what a gatedvision-scoped build imports first: the shared engine; a task's own modules are
# imported by its config (custom_imports), so building one task never imports another's library
_TASKS = ['gatedvision.engine']

RUNNERS = Registry('runner', parent=root.RUNNERS, locations=_TASKS)
RUNNER_CONSTRUCTORS = Registry('runner constructor', parent=root.RUNNER_CONSTRUCTORS)
LOOPS = Registry('loop', parent=root.LOOPS, locations=_TASKS)
HOOKS = Registry('hook', parent=root.HOOKS, locations=_TASKS)
DATASETS = Registry('dataset', parent=root.DATASETS, locations=_TASKS)
DATA_SAMPLERS = Registry('data sampler', parent=root.DATA_SAMPLERS, locations=_TASKS)
TRANSFORMS = Registry('transform', parent=root.TRANSFORMS, locations=_TASKS)
MODELS = Registry('model', parent=root.MODELS, locations=_TASKS)
MODEL_WRAPPERS = Registry('model_wrapper', parent=root.MODEL_WRAPPERS, locations=_TASKS)
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=root.WEIGHT_INITIALIZERS, locations=_TASKS)
OPTIMIZERS = Registry('optimizer', parent=root.OPTIMIZERS, locations=_TASKS)
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=root.OPTIM_WRAPPERS, locations=_TASKS)
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=root.OPTIM_WRAPPER_CONSTRUCTORS, locations=_TASKS)
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=root.PARAM_SCHEDULERS, locations=_TASKS)
METRICS = Registry('metric', parent=root.METRICS, locations=_TASKS)
EVALUATOR = Registry('evaluator', parent=root.EVALUATOR, locations=_TASKS)
TASK_UTILS = Registry('task util', parent=root.TASK_UTILS, locations=_TASKS)
VISUALIZERS = Registry('visualizer', parent=root.VISUALIZERS, locations=_TASKS)
VISBACKENDS = Registry('vis_backend', parent=root.VISBACKENDS, locations=_TASKS)
LOG_PROCESSORS = Registry('log_processor', parent=root.LOG_PROCESSORS, locations=_TASKS)
INFERENCERS = Registry('inferencer', parent=root.INFERENCERS, locations=_TASKS)
FUNCTIONS = Registry('function', parent=root.FUNCTIONS, locations=_TASKS)
