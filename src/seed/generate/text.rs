//! Word banks and sentence templates (`seed/text/<lang>.toml`) and the composition of
//! story text from them. Templates are compiled once into literal and slot pieces so
//! filling one is a handful of memcpys.

use super::{pick, pick_str, Rng8};
use anyhow::{bail, Context, Result};
use rand::RngExt;
use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Hero,
    Companion,
    Place,
    Object,
    Action,
    Feeling,
    Sky,
    Sound,
    Time,
    Thing,
    // Prompt-only slots, filled by the caller.
    Style,
    Look,
    Mood,
    Palette,
}

impl Slot {
    fn parse(name: &str) -> Option<Slot> {
        Some(match name {
            "hero" => Slot::Hero,
            "companion" => Slot::Companion,
            "place" => Slot::Place,
            "object" => Slot::Object,
            "action" => Slot::Action,
            "feeling" => Slot::Feeling,
            "sky" => Slot::Sky,
            "sound" => Slot::Sound,
            "time" => Slot::Time,
            "thing" => Slot::Thing,
            "style" => Slot::Style,
            "look" => Slot::Look,
            "mood" => Slot::Mood,
            "palette" => Slot::Palette,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Lit(String),
    Slot(Slot, bool),
}

#[derive(Debug, Clone)]
pub struct Template(Vec<Piece>);

impl Template {
    fn compile(src: &str, file: &str) -> Result<Template> {
        let mut pieces = Vec::new();
        let mut rest = src;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Lit(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                bail!("{file}: unclosed {{ in template {src:?}")
            };
            let name = &rest[open + 1..open + close];
            let cap = name.starts_with(|c: char| c.is_ascii_uppercase());
            let Some(slot) = Slot::parse(&name.to_ascii_lowercase()) else {
                bail!("{file}: unknown slot {{{name}}} in template {src:?}")
            };
            pieces.push(Piece::Slot(slot, cap));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Lit(rest.to_string()));
        }
        Ok(Template(pieces))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBank {
    names: Option<RawNames>,
    story: RawStory,
    hero: RawHero,
    events: RawEvents,
    prompts: Option<RawPrompts>,
    visual: Option<Visual>,
    system: Option<System>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNames {
    first: Vec<String>,
    last: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStory {
    title_templates: Vec<String>,
    things: Vec<String>,
    openings: Vec<String>,
    sentences: Vec<String>,
    closings: Vec<String>,
    places: Vec<String>,
    companions: Vec<String>,
    objects: Vec<String>,
    actions: Vec<String>,
    feelings: Vec<String>,
    skies: Vec<String>,
    sounds: Vec<String>,
    times: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHero {
    pub appearances: Vec<String>,
    pub abilities: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvents {
    pub titles: Vec<String>,
    pub descriptions: Vec<String>,
    pub prompt_seeds: Vec<String>,
    pub keywords: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrompts {
    styles: Vec<String>,
    scene_templates: Vec<String>,
    revised_prefix: Vec<String>,
    sanitize_suffix: String,
    avatar_templates: Vec<String>,
    moods: Vec<String>,
}

/// Hero look vocabulary (English, for prompts and `visual_profile`).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Visual {
    pub hair_colors: Vec<String>,
    pub hair_styles: Vec<String>,
    pub eye_colors: Vec<String>,
    pub skin_tones: Vec<String>,
    pub clothing_styles: Vec<String>,
    pub features: Vec<String>,
    pub colors: Vec<String>,
}

/// Backend strings (English): error messages and moderation snippets.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct System {
    pub illustration_errors: Vec<String>,
    pub api_errors: Vec<(String, String)>,
    pub flag_snippets: Vec<String>,
    pub flag_rewrites: Vec<String>,
}

/// One language's bank, compiled.
pub struct Bank {
    pub names: Option<(Vec<String>, Vec<String>)>,
    titles: Vec<Template>,
    things: Vec<String>,
    openings: Vec<Template>,
    sentences: Vec<Template>,
    closings: Vec<Template>,
    places: Vec<String>,
    companions: Vec<String>,
    objects: Vec<String>,
    actions: Vec<String>,
    feelings: Vec<String>,
    skies: Vec<String>,
    sounds: Vec<String>,
    times: Vec<String>,
    pub hero: RawHero,
    pub events: RawEvents,
}

pub struct Prompts {
    pub styles: Vec<String>,
    pub scenes: Vec<Template>,
    pub revised_prefix: Vec<String>,
    pub sanitize_suffix: String,
    pub avatars: Vec<Template>,
    pub moods: Vec<String>,
}

/// All languages (in `profile::LANGUAGES` order) plus the English-only sections.
pub struct Texts {
    pub banks: Vec<Bank>,
    pub prompts: Prompts,
    pub visual: Visual,
    pub system: System,
}

/// Values of the slots a template may use besides the word lists.
#[derive(Default, Clone, Copy)]
pub struct Fill<'a> {
    pub hero: &'a str,
    pub style: &'a str,
    pub look: &'a str,
    pub mood: &'a str,
    pub palette: &'a str,
}

impl Texts {
    pub fn load() -> Result<Texts> {
        let mut banks = Vec::new();
        let mut english = None;
        for lang in crate::seed::profile::LANGUAGES {
            let rel = format!("seed/text/{lang}.toml");
            let (_, text) = crate::paths::read_project_file(&rel)?;
            let raw: RawBank = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{rel}: {e}"))?;
            let (bank, extra) = Bank::compile(raw, &rel)?;
            if lang == "en" {
                english = Some(extra);
            }
            banks.push(bank);
        }
        let (prompts, visual, system) = english
            .flatten()
            .context("seed/text/en.toml: needs [prompts], [visual] and [system]")?;
        Ok(Texts {
            banks,
            prompts,
            visual,
            system,
        })
    }
}

type EnglishOnly = Option<(Prompts, Visual, System)>;

impl Bank {
    fn compile(raw: RawBank, file: &str) -> Result<(Bank, EnglishOnly)> {
        let all = |v: &[String]| {
            v.iter()
                .map(|s| Template::compile(s, file))
                .collect::<Result<Vec<_>>>()
        };
        let s = raw.story;
        for (key, list) in [
            ("story.title_templates", &s.title_templates),
            ("story.things", &s.things),
            ("story.openings", &s.openings),
            ("story.sentences", &s.sentences),
            ("story.closings", &s.closings),
            ("story.places", &s.places),
            ("story.companions", &s.companions),
            ("story.objects", &s.objects),
            ("story.actions", &s.actions),
            ("story.feelings", &s.feelings),
            ("story.skies", &s.skies),
            ("story.sounds", &s.sounds),
            ("story.times", &s.times),
            ("hero.appearances", &raw.hero.appearances),
            ("hero.abilities", &raw.hero.abilities),
            ("events.titles", &raw.events.titles),
            ("events.descriptions", &raw.events.descriptions),
            ("events.prompt_seeds", &raw.events.prompt_seeds),
            ("events.keywords", &raw.events.keywords),
        ] {
            if list.is_empty() {
                bail!("{file}: key {key} must not be empty");
            }
        }
        let extra = match (raw.prompts, raw.visual, raw.system) {
            (Some(p), Some(v), Some(sys)) => Some((
                Prompts {
                    scenes: all(&p.scene_templates)?,
                    avatars: all(&p.avatar_templates)?,
                    styles: p.styles,
                    revised_prefix: p.revised_prefix,
                    sanitize_suffix: p.sanitize_suffix,
                    moods: p.moods,
                },
                v,
                sys,
            )),
            _ => None,
        };
        let bank = Bank {
            names: raw.names.map(|n| (n.first, n.last)),
            titles: all(&s.title_templates)?,
            openings: all(&s.openings)?,
            sentences: all(&s.sentences)?,
            closings: all(&s.closings)?,
            things: s.things,
            places: s.places,
            companions: s.companions,
            objects: s.objects,
            actions: s.actions,
            feelings: s.feelings,
            skies: s.skies,
            sounds: s.sounds,
            times: s.times,
            hero: raw.hero,
            events: raw.events,
        };
        Ok((bank, extra))
    }

    /// Appends `t` with its slots filled.
    pub fn render(&self, t: &Template, fill: &Fill, rng: &mut Rng8, out: &mut String) {
        for piece in &t.0 {
            match piece {
                Piece::Lit(s) => out.push_str(s),
                Piece::Slot(slot, cap) => {
                    let v: &str = match slot {
                        Slot::Hero => fill.hero,
                        Slot::Companion => pick_str(rng, &self.companions),
                        Slot::Place => pick_str(rng, &self.places),
                        Slot::Object => pick_str(rng, &self.objects),
                        Slot::Action => pick_str(rng, &self.actions),
                        Slot::Feeling => pick_str(rng, &self.feelings),
                        Slot::Sky => pick_str(rng, &self.skies),
                        Slot::Sound => pick_str(rng, &self.sounds),
                        Slot::Time => pick_str(rng, &self.times),
                        Slot::Thing => pick_str(rng, &self.things),
                        Slot::Style => fill.style,
                        Slot::Look => fill.look,
                        Slot::Mood => fill.mood,
                        Slot::Palette => fill.palette,
                    };
                    if *cap {
                        push_capitalized(out, v);
                    } else {
                        out.push_str(v);
                    }
                }
            }
        }
    }

    pub fn title(&self, hero: &str, rng: &mut Rng8, out: &mut String) {
        let t = pick(rng, &self.titles);
        self.render(
            t,
            &Fill {
                hero,
                ..Fill::default()
            },
            rng,
            out,
        );
    }

    /// Composes a story of at least `target_words` words into `out` (cleared first),
    /// recording after each sentence its end offset and the words so far in `ends`.
    /// Returns the word count (whitespace-separated tokens).
    pub fn story(
        &self,
        hero: &str,
        target_words: u32,
        rng: &mut Rng8,
        out: &mut String,
        ends: &mut Vec<(usize, u32)>,
    ) -> u32 {
        out.clear();
        ends.clear();
        let fill = Fill {
            hero,
            ..Fill::default()
        };
        let mut words = 0;
        let mut add = |out: &mut String, t: &Template, rng: &mut Rng8, words: &mut u32| {
            let start = out.len();
            self.render(t, &fill, rng, out);
            *words += count_words(&out.as_bytes()[start..]);
            ends.push((out.len(), *words));
        };
        add(out, pick(rng, &self.openings), rng, &mut words);
        let mut last = usize::MAX;
        let mut in_paragraph = 1;
        let mut paragraph_len = rng.random_range(2..5);
        while words < target_words {
            if in_paragraph >= paragraph_len {
                out.push_str("\n\n");
                in_paragraph = 0;
                paragraph_len = rng.random_range(3..7);
            } else {
                out.push(' ');
            }
            // Never the same template twice in a row: reads (and compresses) more like prose.
            let mut i = rng.random_range(0..self.sentences.len());
            if i == last {
                i = (i + 1) % self.sentences.len();
            }
            last = i;
            add(out, &self.sentences[i], rng, &mut words);
            in_paragraph += 1;
        }
        out.push_str("\n\n");
        add(out, pick(rng, &self.closings), rng, &mut words);
        words
    }
}

/// Words (runs of non-whitespace) in text whose only whitespace is ASCII (true of the
/// banks), i.e. what `split_whitespace` counts, without decoding UTF-8.
fn count_words(b: &[u8]) -> u32 {
    let mut n = 0;
    let mut in_word = false;
    for &c in b {
        let space = c.is_ascii_whitespace();
        n += u32::from(!space && !in_word);
        in_word = !space;
    }
    n
}

/// Appends `s` with its first character in upper case.
fn push_capitalized(out: &mut String, s: &str) {
    let mut chars = s.chars();
    if let Some(c) = chars.next() {
        out.extend(c.to_uppercase());
        out.push_str(chars.as_str());
    }
}

/// Appends an e-mail-safe lower-case ASCII form of a name (accents folded, others dropped).
pub fn push_ascii_slug(out: &mut String, s: &str) {
    for c in s.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'a'..='z' | '0'..='9' => c,
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ß' => {
                out.push_str("ss");
                continue;
            }
            _ => continue,
        };
        out.push(folded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn banks_parse_and_compose() {
        let texts = Texts::load().unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(texts.banks.len(), 5);
        assert!(
            texts.banks[1].names.is_some(),
            "Spanish names come from es.toml"
        );
        let mut rng = Rng8::seed_from_u64(1);
        let (mut out, mut ends) = (String::new(), Vec::new());
        for bank in &texts.banks {
            let words = bank.story("Mia", 600, &mut rng, &mut out, &mut ends);
            assert_eq!(words as usize, out.split_whitespace().count());
            assert!((600..700).contains(&words), "{words}");
            assert!(out.len() > 2500, "{}", out.len());
            assert!(!out.contains('{') && !out.contains('}'), "{out}");
            assert_eq!(*ends.last().unwrap(), (out.len(), words));
        }
    }

    #[test]
    fn slugs_are_ascii() {
        let mut s = String::new();
        push_ascii_slug(&mut s, "Álvaro Müßig-Núñez");
        assert_eq!(s, "alvaromussignunez");
    }
}
