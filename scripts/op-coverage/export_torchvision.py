"""Export every torchvision 0.14 classifier at random init to ONNX (opset 17), for the op-coverage check.

Run with Debian's python3-torch 1.13 / torchvision 0.14:  /usr/bin/python3 export_torchvision.py OUT_DIR [NAME...]
Writes OUT_DIR/<name>.onnx and OUT_DIR/<name>.json ({"input": [1, 3, H, W], "weights": true|false, "params": n} or
{"error": "..."}). Images are as small as each model accepts (64×64 unless noted below), so exports are quick.
Models over WEIGHT_LIMIT parameters (but one of each family, WEIGHTS_ANYWAY) are exported without their weights
(export_params=False: the weights become graph inputs); their ops are still listed, but the checker does not build
their gradient graph.
"""
import json, os, sys, time, traceback
import torch
import torchvision.models as models

WEIGHT_LIMIT = 40_000_000
# one model of each family that is all above the limit keeps its weights anyway, so every family's gradient graph is built
WEIGHTS_ANYWAY = {'alexnet', 'vgg11', 'vit_b_32'}
NUM_CLASSES = 10
# image side per model where 64 does not work: the Inception stem needs 75 or more; AlexNet's and VGG's adaptive
# pooling to 6×6 / 7×7 must divide their last feature map; MaxViT's 7×7 partitions need 224; ViT takes any side
# divisible by its patch.
SIDE = {'inception_v3': 96, 'alexnet': 224, 'vit_h_14': 56, 'maxvit_t': 224}
SIDE.update({name: 224 for name in ['vgg11', 'vgg11_bn', 'vgg13', 'vgg13_bn', 'vgg16', 'vgg16_bn', 'vgg19', 'vgg19_bn']})


def build(name, side):
    kwargs = {'weights': None, 'num_classes': NUM_CLASSES}
    if name.startswith('vit_'):
        kwargs['image_size'] = side
    if name in ('inception_v3', 'googlenet'):
        kwargs.update(aux_logits=False, init_weights=True)
    return models.get_model(name, **kwargs).eval()


def export(name, out):
    torch.manual_seed(0)
    side = SIDE.get(name, 64)
    model = build(name, side)
    params = sum(p.numel() for p in model.parameters())
    weights = params <= WEIGHT_LIMIT or name in WEIGHTS_ANYWAY
    x = torch.rand(1, 3, side, side)
    with torch.no_grad():
        model(x)
    torch.onnx.export(model, (x,), os.path.join(out, f'{name}.onnx'), opset_version=17, input_names=['x'], output_names=['logits'],
                      dynamic_axes={'x': {0: 'batch'}, 'logits': {0: 'batch'}}, export_params=weights, do_constant_folding=weights)
    return {'input': [1, 3, side, side], 'weights': weights, 'params': params}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    names = sys.argv[2:] or models.list_models(module=models)
    for name in names:
        record_path = os.path.join(out, f'{name}.json')
        if os.path.exists(record_path):
            continue
        start = time.time()
        try:
            record = export(name, out)
        except Exception as error:  # an export failure is a result to report, not a reason to stop
            record = {'error': f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}'[:300]}
            traceback.print_exc()
        record['seconds'] = round(time.time() - start, 1)
        with open(record_path, 'w') as f:
            json.dump(record, f)
        print(name, json.dumps(record), flush=True)


if __name__ == '__main__':
    main()
