"""Benchmark-only stand-in for torchvision.

timm imports torchvision when it is imported, but its ViT needs only torch, and PyPI's CPU torch has
no matching torchvision wheel here (see BENCHMARKS.md). Every `torchvision.*` module and attribute
this package is asked for is an inert placeholder class. Put `benchmarks/stubs` on PYTHONPATH only
for the comparison benchmarks, never for anything that uses torchvision for real.
"""

import importlib.abc
import importlib.machinery
import sys
import types

__version__ = "0.0.0+frx-benchmark-stub"
__path__ = []


def _placeholder_attribute(owner, name):
    if name.startswith("__"):
        raise AttributeError(name)
    placeholder = _AnyAttribute(name, (_Placeholder,), {})
    setattr(owner, name, placeholder)
    return placeholder


class _AnyAttribute(type):
    __getattr__ = _placeholder_attribute


class _Placeholder(metaclass=_AnyAttribute):
    def __init__(self, *args, **kwargs):
        pass


class _PlaceholderModule(types.ModuleType):
    __getattr__ = _placeholder_attribute


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname.startswith(__name__ + "."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _PlaceholderModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Finder())
