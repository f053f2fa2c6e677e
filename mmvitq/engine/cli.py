"""What tools/train.py and tools/test.py share: the common arguments and the config they produce."""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

from .dist import setup_cpu_distributed


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """--work-dir, --cfg-options, --launcher and --local-rank, as in mmdet's tools."""
    parser.add_argument('--work-dir', help='the dir to save logs, checkpoints and metrics')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--unsafe-load', action='store_true',
                        help='load checkpoints with full unpickling (weights_only=False): only for files you trust')


def load_config(args: argparse.Namespace) -> Config:
    """The config with the command-line overrides, a work dir, and CPU distributed set up if launched so."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.unsafe_load:
        cfg.unsafe_load = True
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join('./work_dirs',
                                                                     osp.splitext(osp.basename(args.config))[0])
    setup_cpu_distributed(cfg)
    return cfg
