"""The sentences the simulated endpoint voices a solver's moves with (see simulated_text).

Whole sentences only, and none naming numbered steps, notes or instructions: the leakage
check would (rightly) flag them. "{t}" is a move's own text, "{n}" a fact, "{p}" the problem,
"{a}" the answer, "{g}" the gist of a move and "{list}" a retelling of several.
"""

# How each kind of move is voiced; "{t}" is the move's own text, unchanged.
OPENERS = {
    "first": (
        "Hmm, where to begin? A first idea: {t}",
        "Let me start with the most direct thing I can think of: {t}",
        "A natural first move: {t}",
        "Let me just try something and see where it goes: {t}",
    ),
    "attempt": (
        "Let me try this: {t}",
        "Another idea: {t}",
        "What if I go this way instead: {t}",
        "Let me push on with this: {t}",
    ),
    "reflection": (
        "Wait, something is off here: {t}",
        "Wait, let me look at that again: {t}",
        "Hmm, wait. That doesn't sit right: {t}",
        "Wait a moment, I should question that: {t}",
    ),
    "association": (
        "This reminds me of something useful: {t}",
        "Hmm, this looks familiar: {t}",
        "There is a connection worth using here: {t}",
    ),
    "correction": (
        "So that has to be fixed. Alternatively: {t}",
        "Let me correct course. Alternatively, the better way: {t}",
        "Okay, that was wrong. Alternatively: {t}",
    ),
    "backtrack": (
        "This path isn't leading anywhere. Alternatively, going back: {t}",
        "Hmm, I'm going in circles. Let me back up: {t}",
        "Let me abandon that line and return to an earlier point: {t}",
    ),
    "verification": (
        "Let me verify that before going on: {t}",
        "A quick check: {t}",
        "Let me make sure of this: {t}",
    ),
    "conclusion": (
        "So, putting it together: {t}",
        "That settles it: {t}",
        "Therefore: {t}",
    ),
}
FACTS = (
    "The fact I'm relying on here: {n}",
    "To say it plainly, I'm using this: {n}",
    "Worth stating what I'm assuming: {n}",
    "This rests on a basic fact: {n}",
)
# The short pause after a move depends on what kind of move comes next.
PAUSES = {
    "reflection": ("Hmm, before going on, let me look at this again.",
                   "Let me pause here and make sure that holds."),
    "correction": ("So that does not hold up. What else can I do?",
                   "Okay, so something has to change. Let me think about how."),
    "association": ("Let me think about whether I've seen something like this before.",
                    "Is there something familiar I can use here?"),
    "verification": ("That looks promising. Let me make sure of it.",
                     "Good. I should confirm this before building on it."),
    "conclusion": ("I think I have everything I need now.", "That seems to close the gap."),
    "attempt": ("So far, so good. Let me keep going.", "Okay. What comes next?",
                "Let me see what follows from this."),
}  # fmt: skip
PAUSES["backtrack"] = PAUSES["correction"]
RECAP_LINKS = {
    "first": "the first idea was: {g}",
    "attempt": "then I tried: {g}",
    "reflection": "then I noticed a problem: {g}",
    "correction": "so I changed course: {g}",
    "backtrack": "so I went back: {g}",
    "association": "that brought something to mind: {g}",
    "verification": "I checked: {g}",
    "conclusion": "which led to: {g}",
}
RECAPS = (
    "Let me pause and take stock. {list}.",
    "Okay, let me sum up where I am. {list}.",
    "Before going further, a quick recap. {list}.",
    "Let me go back over it for a moment. {list}.",
)
ONWARD = (
    "Next, let me see what follows from this.",
    "Now the question is what to try next.",
    "That gives me something solid to build on.",
    "Each piece fits with the one before it, as far as I can see.",
)
DOUBTFUL = (  # after a recap that ends on a doubt
    "So the first idea needs rethinking.",
    "Something there has to give, and I need to find what.",
    "That doubt has to be settled before anything else.",
)
SETTLED = (  # after a recap of every move
    "That looks like the whole of it.",
    "Everything seems to point the same way.",
    "That is the whole chain, start to finish.",
)
OTHER_ROUTES = (
    "Alternatively, is there a completely different way in? Nothing simpler comes to mind, so "
    "let me stay with what I have.",
    "Hmm, could I have gone about this differently? Perhaps, but the current line is working, "
    "and switching now would only add risk.",
    "Is there a shortcut I'm missing? I don't see one, and the direct route is easier to check.",
)
SENSE = (
    "Does {a} make sense as an answer? Let me hold it against the question once more.",
    "Let me make sure {a} is really what the question asks for, and in the right form.",
    "Before I commit to {a}, let me see whether it is a reasonable size and shape.",
)
RECHECKS = (
    "Let me check this part again, slowly: {t}",
    "Let me verify one piece before trusting it: {t}",
    "Hmm, let me double-check this: {t}",
    "Going over this once more: {t}",
)
VERDICTS = (
    "Yes, that holds up.",
    "I get the same thing the second time.",
    "That still looks right to me.",
    "I don't see a gap in it.",
    "Nothing there contradicts what came before.",
)
FACT_AGAIN = (
    "Let me make sure I'm using this fact correctly: {n}",
    "It is worth keeping this in view: {n}",
    "Once more, the fact underneath all this: {n}",
)
FACT_AFTER = (
    "Everything above leans on it, so it's good to have it said plainly.",
    "Yes, that is what I used, and it applies here.",
    "With that in mind, the reasoning goes through.",
)
REREADS = (
    "Let me reread the question to be sure I'm answering what is asked: {p}",
    "Hmm, let me look at the question once more: {p}",
)
REREAD_AFTER = ("Yes, that is what I'm working toward.", "Good, I haven't lost sight of it.")
# Whole sentences for reflective paragraphs, and (with the short ones) for exact length.
MUSINGS = (
    "I want to be careful not to skip anything here.",
    "It helps to slow down at this point.",
    "A small slip now would spoil everything after it.",
    "Let me make sure each piece is justified before moving on.",
    "So far nothing contradicts anything else.",
    "I should keep the goal in view and not wander off.",
    "It is easy to fool myself with a quick glance, so let me be deliberate.",
    "Every part of the argument seems to pull in the same direction.",
    "If something were wrong, this is where it would show.",
    "Let me not rush to the end.",
    "I keep coming back to the same picture, which is reassuring.",
    "There is no sign of a hidden case I have missed.",
)
SHORT = (
    "Good.", "Right.", "Okay.", "That holds.", "Still consistent.", "Fine so far.",
    "Yes, that holds.", "Nothing is missing.", "That checks out.", "So far, so good.",
    "Everything fits together.", "No contradiction there.", "All of it fits together.",
    "I see no gap there.", "Each piece agrees with the others.",
)  # fmt: skip
