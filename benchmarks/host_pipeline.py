"""Host-side images/s per core: decode + crop + flip on realistic ~500x375 JPEGs.

frx's host pipeline (TF's crop-window JPEG decode through frx.data._jpeg_crop, or a full libjpeg
decode through simplejpeg, then the TF-exact inception crop with the TF bilinear resize through
OpenCV, flip; frx.data.fast_image), the same ops with those compiled paths off (Pillow decode, NumPy
resize: the reference), and torchvision's RandomResizedCrop pipeline (PIL decode,
RandomResizedCrop(224) -> PIL antialiased resize, RandomHorizontalFlip), all taking turns pass by
pass in one process. `--impl frx` runs torchvision's PIL path as PIL calls (where torchvision does
not install beside the CPU torch); `--impl torchvision` runs torchvision itself. The images are crops
of the real photo matplotlib ships, re-encoded as 500x375 / 375x500 JPEGs (quality 90 by default),
so both sides read the same bytes.
Each measurement is pinned to one core with one thread.

    python benchmarks/host_pipeline.py --make-images /tmp/frx_jpegs          # once (--quality 98: ~105 KiB)
    python benchmarks/host_pipeline.py --images /tmp/frx_jpegs --impl frx
    /path/to/torch-venv/bin/python benchmarks/host_pipeline.py --images /tmp/frx_jpegs --impl torchvision

torchvision needs its own venv (PyPI's CPU torch 2.13 has no matching torchvision; torch 2.14.1 +
torchvision 0.29.1 work on a CPU-only machine): python -m venv /tmp/tv-venv &&
/tmp/tv-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 pillow numpy
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time

from cpu_load import busy_seconds, own_cpu_seconds


def make_images(folder: str, count: int = 200, seed: int = 0, quality: int = 90) -> None:
    import numpy as np
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        photo = Image.open(f).convert("RGB")
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(count):
        size = (500, 375) if i % 4 else (375, 500)  # a quarter portrait, as in ImageNet
        scale = rng.uniform(0.55, 1.0)
        w, h = int(photo.width * scale), int(photo.height * scale)
        x, y = int(rng.integers(0, photo.width - w + 1)), int(rng.integers(0, photo.height - h + 1))
        image = photo.crop((x, y, x + w, y + h)).resize(size, Image.BICUBIC)
        if i % 2:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        image.save(os.path.join(folder, f"{i:04d}.jpg"), quality=quality)


def _pipelines(impl: str):
    """name -> fn(jpeg bytes, per-image rng) -> uint8 HxWx3 array."""
    import numpy as np
    from PIL import Image

    def decode(data, rng=None):
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))

    if impl == "frx":
        from frx.data import fast_image
        from frx.data.crops import inception_crop_box, random_resized_crop_box
        from frx.data.pp import make_pipeline

        def image_fn(pp: str):  # the host ops on a record holding just the encoded image
            host_fn = make_pipeline(pp).host_fn()
            return lambda data, rng: host_fn({"image": data}, rng)["image"]

        def reference(fn):  # the same op with the compiled paths off: Pillow decode, NumPy resize
            def run(data, rng):
                saved = fast_image.cv2, fast_image.simplejpeg, fast_image._jpeg_crop
                fast_image.cv2 = fast_image.simplejpeg = fast_image._jpeg_crop = None
                try:
                    return fn(data, rng)
                finally:
                    fast_image.cv2, fast_image.simplejpeg, fast_image._jpeg_crop = saved
            return run

        def window_box(data, rng):  # the box decode_jpeg_and_inception_crop draws (same rng use)
            height, width, _ = fast_image.jpeg_shape(data)
            return inception_crop_box(rng, height, width)

        def window_only(data, rng):
            return fast_image.decode_jpeg_crop(data, window_box(data, rng))

        def window_bottom_row(data, rng):
            y, x, h, w = window_box(data, rng)
            return fast_image.decode_jpeg_crop(data, (y + h - 1, x, 1, w))

        def pil_rrc(data, rng):
            # torchvision's PIL path (transforms.RandomResizedCrop(224) + RandomHorizontalFlip on a PIL
            # image): decode, crop + resize with PIL's antialiased bilinear filter, flip; the box
            # sampler is torchvision's law (frx.data.crops), a negligible cost either way.
            with Image.open(io.BytesIO(data)) as im:
                im = im.convert("RGB")
                y, x, h, w = random_resized_crop_box(rng, im.height, im.width, (0.08, 1.0), (3 / 4, 4 / 3))
                out = im.resize((224, 224), Image.BILINEAR, box=(x, y, x + w, y + h))
                if rng.random() < 0.5:
                    out = out.transpose(Image.FLIP_LEFT_RIGHT)
                return np.asarray(out)

        return {"decode only (PIL)": decode,
                "decode only (frx: libjpeg, TF's default fast DCT)": image_fn("decode"),
                "decode only (frx: libjpeg, precise=True)": image_fn("decode(precise=True)"),
                # a floor on any exact decode: the entropy decoding of every block, with 1/64 of the IDCT
                "entropy decoding ceiling (libjpeg at 1/8 scale)": lambda data, rng: fast_image.decode_scaled(data, 8),
                # the floor of the window decode: the rows down to the window's last one, entropy-decoded
                # (libjpeg skips the IDCT above the window), with only that last row reconstructed
                "entropy decoding down to the window (its last row decoded)": window_bottom_row,
                "window decode only (no resize)": window_only,
                "frx decode_jpeg_and_inception_crop(224) + flip_lr (window decode)":
                    image_fn("decode_jpeg_and_inception_crop(224)|flip_lr"),
                "frx decode + inception_crop(224) + flip_lr (full decode)": image_fn("decode|inception_crop(224)|flip_lr"),
                "frx decode(precise=True) + inception_crop(224) + flip_lr, reference (Pillow + NumPy)":
                    reference(image_fn("decode(precise=True)|inception_crop(224)|flip_lr")),
                "frx decode + random_resized_crop(224) + flip_lr": image_fn("decode|random_resized_crop(224)|flip_lr"),
                "frx decode_jpeg_and_inception_crop(224, dct=True) + flip_lr":
                    image_fn("decode_jpeg_and_inception_crop(224, dct=True)|flip_lr"),
                "PIL as torchvision: decode + RandomResizedCrop(224) + flip": pil_rrc}
    import torch
    from torchvision import transforms

    torch.set_num_threads(1)
    rrc = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip()])

    def torchvision_rrc(data, rng=None):
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(rrc(im.convert("RGB")))

    return {"decode only (PIL)": decode,
            "torchvision decode + RandomResizedCrop(224) + RandomHorizontalFlip": torchvision_rrc}


def measure_all(images: list[bytes], pipelines: dict, passes: int, core: int, max_others: float = 0.1) -> dict:
    """Median img/s per pipeline over passes in which other processes used < max_others of the pinned
    core (from /proc/stat minus this process's own CPU time); all passes if none were clean. The
    pipelines take turns pass by pass, so they share the machine's load."""
    import numpy as np

    os.sched_setaffinity(0, {core})
    clean = {name: [] for name in pipelines}
    every = {name: [] for name in pipelines}
    for p in range(passes + 1):
        for name, fn in pipelines.items():
            rngs = [np.random.default_rng([p, i]) for i in range(len(images))]
            own, busy, start = own_cpu_seconds(), busy_seconds(core), time.perf_counter()
            for data, rng in zip(images, rngs):
                out = fn(data, rng)
            elapsed = time.perf_counter() - start
            others = max(0.0, busy_seconds(core) - busy - (own_cpu_seconds() - own)) / elapsed
            assert out.dtype == np.uint8
            if p:  # the first pass warms caches and imports
                every[name].append(len(images) / elapsed)
                if others < max_others:
                    clean[name].append(len(images) / elapsed)
    return {name: {"img_per_s": statistics.median(clean[name] or every[name]), "clean_passes": len(clean[name]),
                   "passes": passes} for name in pipelines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--make-images", metavar="DIR")
    parser.add_argument("--images", metavar="DIR")
    parser.add_argument("--impl", choices=["frx", "torchvision"], default="frx")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of --make-images (98: ~105 KiB)")
    args = parser.parse_args()
    if args.make_images:
        make_images(args.make_images, quality=args.quality)
        print(f"wrote 200 JPEGs to {args.make_images}")
        return
    files = sorted(os.listdir(args.images))
    images = [open(os.path.join(args.images, f), "rb").read() for f in files]
    print(f"{len(images)} JPEGs, mean {sum(map(len, images)) / len(images) / 1024:.0f} KiB; core {args.core}, "
          f"median of {args.passes} passes", file=sys.stderr)
    results = measure_all(images, _pipelines(args.impl), args.passes, args.core)
    for name, r in results.items():
        print(f"{r['img_per_s']:8.0f} img/s  {name}  ({r['clean_passes']}/{r['passes']} clean passes)")
    print(json.dumps({"impl": args.impl, "core": args.core, "results": results}))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
