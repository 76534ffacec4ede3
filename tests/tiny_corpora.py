"""Tiny corpora shared by tokenizer tests: a few English and Uyghur lines, repeated."""

from __future__ import annotations

EN = ["the cat sat on the mat", "a dog ran in the park", "birds sing in the morning"] * 40
UG = ["ئوتلاق ياۋا مۈشۈكى گۆشخور ھايۋان", "يىلپىز مۈشۈك ئائىلىسىگە تەۋە", "ئۇيغۇرچە ۋىكىپىدىيە"] * 40
