"""Stand-in for the parts of Hugging Face `transformers` that llama.cpp's and ik_llama.cpp's convert_hf_to_gguf.py
use for a BPE (tokenizer.json) model: AutoTokenizer and AutoConfig. Not the real library.

AutoTokenizer.from_pretrained(dir) reads tokenizer.json / tokenizer_config.json in Python (vocab, added tokens) and
encodes/decodes with Hugging Face's Rust `tokenizers` (npm package, through a small node server,
hf_tokenizer_server.mjs), so ids match Hugging Face's. encode(add_special_tokens=True) adds BOS/EOS the way
LlamaTokenizerFast does (tokenizer_config add_bos_token / add_eos_token); for other tokenizer classes it applies
tokenizer.json's own post-processor.

AutoConfig.from_pretrained(dir) returns config.json as is (to_dict()); no per-architecture defaults.
"""
import atexit
import json
import os
import subprocess
import threading

__version__ = "0.0.0+whale-pyshim"

_HERE = os.path.dirname(os.path.abspath(__file__))


class AddedToken:
    def __init__(self, content, single_word=False, lstrip=False, rstrip=False, normalized=True, special=False):
        self.content = content
        self.single_word = single_word
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized
        self.special = special

    def __str__(self):
        return self.content

    def __repr__(self):
        return (f"AddedToken({self.content!r}, rstrip={self.rstrip}, lstrip={self.lstrip}, "
                f"single_word={self.single_word}, normalized={self.normalized}, special={self.special})")

    def __eq__(self, other):
        return str(self) == str(other)

    def __hash__(self):
        return hash(self.content)


class _NodeTokenizer:
    """One node process per tokenizer.json, requests answered in order."""

    def __init__(self, tokenizer_json):
        node = os.environ.get("WHALE_PYSHIM_NODE", "node")
        self._proc = subprocess.Popen([node, os.path.join(_HERE, "hf_tokenizer_server.mjs"), tokenizer_json],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
                                      bufsize=1)
        self._lock = threading.Lock()
        atexit.register(self.close)

    def request(self, req):
        with self._lock:
            self._proc.stdin.write(json.dumps(req, ensure_ascii=False) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("pyshim: node tokenizer server exited (is `npm ci` done in the repo?)")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError("pyshim: node tokenizer server: " + reply["error"])
        return reply

    def close(self):
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except Exception:
                self._proc.kill()


def _token_content(v):
    if isinstance(v, dict):
        return v.get("content")
    return v


def _clean_up_tokenization(s):
    return (s.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",").replace(" ' ", "'")
            .replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s").replace(" 've", "'ve")
            .replace(" 're", "'re"))


class PreTrainedTokenizerFast:
    def __init__(self, path):
        self.name_or_path = os.fspath(path)
        tj = os.path.join(self.name_or_path, "tokenizer.json")
        if not os.path.isfile(tj):
            raise OSError(f"pyshim transformers: {tj} not found (only tokenizer.json models are supported)")
        with open(tj, encoding="utf-8") as f:
            self._tj = json.load(f)
        cfg_path = os.path.join(self.name_or_path, "tokenizer_config.json")
        self.init_kwargs = {}
        if os.path.isfile(cfg_path):
            with open(cfg_path, encoding="utf-8") as f:
                self.init_kwargs = json.load(f)
        model = self._tj["model"]
        if model.get("type") not in ("BPE", "WordPiece", "WordLevel"):
            raise ValueError(f"pyshim transformers: tokenizer model {model.get('type')} not supported")
        self._base_vocab = dict(model["vocab"])
        self.added_tokens_decoder = {}
        for t in self._tj.get("added_tokens", []):
            self.added_tokens_decoder[int(t["id"])] = AddedToken(
                t["content"], single_word=t.get("single_word", False), lstrip=t.get("lstrip", False),
                rstrip=t.get("rstrip", False), normalized=t.get("normalized", True), special=t.get("special", False))
        # tokenizer_config.json's added_tokens_decoder (if any) refines the flags, as in transformers
        for k, t in (self.init_kwargs.get("added_tokens_decoder") or {}).items():
            self.added_tokens_decoder[int(k)] = AddedToken(
                t["content"], single_word=t.get("single_word", False), lstrip=t.get("lstrip", False),
                rstrip=t.get("rstrip", False), normalized=t.get("normalized", True), special=t.get("special", False))
        self.added_tokens_decoder = dict(sorted(self.added_tokens_decoder.items()))
        self.added_tokens_encoder = {t.content: i for i, t in self.added_tokens_decoder.items()}
        self._vocab = dict(self._base_vocab)
        self._vocab.update(self.added_tokens_encoder)
        self.chat_template = self.init_kwargs.get("chat_template")
        for role in ("bos", "eos", "unk", "pad", "cls", "sep", "mask"):
            setattr(self, f"{role}_token", _token_content(self.init_kwargs.get(f"{role}_token")))
        self.add_bos_token = bool(self.init_kwargs.get("add_bos_token", False))
        self.add_eos_token = bool(self.init_kwargs.get("add_eos_token", False))
        self.clean_up_tokenization_spaces = bool(self.init_kwargs.get("clean_up_tokenization_spaces", False))
        self.model_max_length = self.init_kwargs.get("model_max_length")
        self._llama_style = ("add_bos_token" in self.init_kwargs or "add_eos_token" in self.init_kwargs or
                             self.init_kwargs.get("tokenizer_class") in ("LlamaTokenizerFast", "LlamaTokenizer"))
        self._node = None
        self._tokenizer_json = tj

    # --- ids and strings -------------------------------------------------------------------------------------
    def _server(self):
        if self._node is None:
            self._node = _NodeTokenizer(self._tokenizer_json)
        return self._node

    def _id(self, token):
        return None if token is None else self._vocab.get(token)

    bos_token_id = property(lambda self: self._id(self.bos_token))
    eos_token_id = property(lambda self: self._id(self.eos_token))
    unk_token_id = property(lambda self: self._id(self.unk_token))
    pad_token_id = property(lambda self: self._id(self.pad_token))

    @property
    def vocab(self):
        return self.get_vocab()

    def get_vocab(self):
        return dict(self._vocab)

    def get_added_vocab(self):
        return {t.content: i for i, t in self.added_tokens_decoder.items()}

    @property
    def vocab_size(self):
        return len(self._base_vocab)

    def __len__(self):
        return len(self._vocab)

    @property
    def all_special_tokens(self):
        seen = []
        for t in (self.bos_token, self.eos_token, self.unk_token, self.pad_token):
            if t is not None and t not in seen:
                seen.append(t)
        return seen

    @property
    def all_special_ids(self):
        return [self._vocab[t] for t in self.all_special_tokens if t in self._vocab]

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self._vocab.get(tokens, self.unk_token_id)
        return [self._vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens=False):
        rev = getattr(self, "_rev", None)
        if rev is None:
            rev = self._rev = {i: t for t, i in self._vocab.items()}
        if isinstance(ids, int):
            return rev.get(ids)
        special = {i for i, t in self.added_tokens_decoder.items() if t.special}
        return [rev.get(i) for i in ids if not (skip_special_tokens and i in special)]

    # --- encode / decode ---------------------------------------------------------------------------------------
    def encode(self, text, add_special_tokens=True, **kwargs):
        if kwargs.get("text_pair") is not None:
            raise NotImplementedError("pyshim transformers: text pairs")
        if self._llama_style:
            ids = self._server().request({"op": "encode", "text": text, "add_special_tokens": False})["ids"]
            if add_special_tokens:
                if self.add_bos_token and self.bos_token_id is not None:
                    ids = [self.bos_token_id] + ids
                if self.add_eos_token and self.eos_token_id is not None:
                    ids = ids + [self.eos_token_id]
            return ids
        return self._server().request({"op": "encode", "text": text,
                                       "add_special_tokens": bool(add_special_tokens)})["ids"]

    def __call__(self, text, add_special_tokens=True, **kwargs):
        if isinstance(text, (list, tuple)):
            return {"input_ids": [self.encode(t, add_special_tokens) for t in text]}
        return {"input_ids": self.encode(text, add_special_tokens)}

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=None, **kwargs):
        if isinstance(ids, int):
            ids = [ids]
        ids = [int(i) for i in ids]
        text = self._server().request({"op": "decode", "ids": ids,
                                       "skip_special_tokens": bool(skip_special_tokens)})["text"]
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None \
            else clean_up_tokenization_spaces
        return _clean_up_tokenization(text) if clean else text

    def batch_decode(self, seqs, **kwargs):
        return [self.decode(s, **kwargs) for s in seqs]


class AutoTokenizer:
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        return PreTrainedTokenizerFast(pretrained_model_name_or_path)


LlamaTokenizerFast = PreTrainedTokenizerFast


class PretrainedConfig:
    def __init__(self, d):
        self.__dict__.update(d)
        self._dict = dict(d)

    def to_dict(self):
        return json.loads(json.dumps(self._dict))

    def __getattr__(self, name):  # only for names not found normally
        raise AttributeError(name)


class AutoConfig:
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        path = os.path.join(os.fspath(pretrained_model_name_or_path), "config.json")
        with open(path, encoding="utf-8") as f:
            return PretrainedConfig(json.load(f))
