package main

// Topic lists that the templates in templates.go draw from. Everything here
// was written for this repository.

var countries = []string{"France", "Peru", "Kenya", "Vietnam", "Norway", "Chile", "Morocco", "New Zealand", "Portugal", "Canada", "Ghana", "Mongolia", "Uruguay", "Finland", "Nepal", "Egypt", "Iceland", "Colombia", "Japan", "Poland"}

var books = []string{"Pride and Prejudice", "One Hundred Years of Solitude", "The Left Hand of Darkness", "Things Fall Apart", "Moby-Dick", "The Master and Margarita", "Beloved", "The Name of the Rose", "Dune", "Middlemarch", "Invisible Cities", "The Remains of the Day"}

var elements = []string{"gold", "sodium", "tungsten", "potassium", "iron", "silver", "lead", "mercury", "tin", "copper"}

var units = [][3]string{
	{"miles", "kilometers", "1.609"}, {"pounds", "kilograms", "0.454"}, {"gallons", "liters", "3.785"},
	{"inches", "centimeters", "2.54"}, {"feet", "meters", "0.305"}, {"ounces", "grams", "28.35"},
	{"Fahrenheit degrees", "Celsius degrees", ""}, {"acres", "hectares", "0.405"},
}

var words = []string{"ephemeral", "ubiquitous", "serendipity", "meticulous", "resilient", "candid", "lucid", "frugal", "verbose", "tenacious", "gregarious", "pragmatic", "nuance", "benevolent", "laconic"}

var misspellings = []string{"recieve", "definately", "seperate", "occured", "accomodate", "enviroment", "goverment", "tommorow", "untill", "wierd"}

var languages = []string{"French", "Spanish", "German", "Italian", "Japanese", "Portuguese", "Korean", "Dutch", "Swedish", "Polish"}

var phrases = []string{"where is the train station", "thank you for your patience", "the meeting is postponed until Monday", "could you send me the invoice", "I would like a table for four", "the package arrived damaged", "please keep the receipt", "happy birthday"}

var cities = []string{"Lisbon", "Osaka", "Denver", "Nairobi", "Melbourne", "Montreal", "Krakow", "Santiago", "Reykjavik", "Hanoi", "Austin", "Edinburgh"}

var animals = []string{"golden retriever", "tabby cat", "parrot", "hamster", "border collie", "rabbit", "tortoise", "goldfish"}

var genres = []string{"mystery", "science fiction", "historical fiction", "fantasy", "non-fiction", "thriller", "poetry", "travel"}

var colors = []string{"red", "yellow", "green", "purple", "orange"}

var events = []string{"the fall of the Berlin Wall", "the first Moon landing", "the signing of the Magna Carta", "the launch of Sputnik", "the opening of the Suez Canal", "the invention of the printing press", "the first transatlantic telegraph"}

var acronyms = []string{"NASA", "HTTP", "GDPR", "SQL", "UNESCO", "DNS", "API", "CPU", "LLM", "ETA", "KPI", "VPN"}

var substances = []string{"water", "ethanol", "liquid nitrogen", "olive oil", "mercury", "acetone"}

var planets = []string{"the largest planet in the solar system", "the planet closest to the Sun", "known as the Red Planet", "the planet with the most prominent rings", "the hottest planet in the solar system"}

var products = []string{"iPhone", "Model 3", "PlayStation 5", "Kindle", "ThinkPad", "Pixel phone"}

var reviews = []string{"The battery died after two days and support never answered.", "Absolutely love it, works exactly as described!", "Arrived late but the quality is excellent.", "Meh. It does the job, nothing special.", "Terrible fit, returning it tomorrow.", "Best purchase I have made this year."}

var sentencesToFix = []string{"me and him goes to the store yesterday", "their going to be late again", "the datas shows a clear trend", "she don't like coffee", "less people came than we expected", "who's book is this"}

var concepts = []string{
	"gradient descent with momentum", "how HTTPS keeps traffic private", "the difference between a process and a thread",
	"how vaccines train the immune system", "compound interest", "how a bloom filter works", "the CAP theorem",
	"how photosynthesis works", "what a Fourier transform does", "how DNS resolution works", "inflation and interest rates",
	"how garbage collection works in Go", "the greenhouse effect", "how a transformer model uses attention", "database indexes",
	"eventual consistency", "how a hash map handles collisions", "the Monty Hall problem", "how tides work", "public key cryptography",
	"backpropagation", "how a compiler turns code into machine instructions", "plate tectonics", "supply and demand",
}

var audiences = []string{"a ten-year-old", "a new engineer on my team", "my grandmother", "a product manager", "a first-year student", "someone with no math background", "a busy executive"}

var forms = []string{"haiku", "limerick", "short poem", "product description", "cover letter", "thank-you note", "tweet", "two-paragraph blog intro", "wedding toast", "LinkedIn post", "bedtime story"}

var formTopics = []string{"autumn in the city", "our new budgeting app", "a senior data analyst role", "a colleague who is retiring", "the joy of sourdough baking", "remote work", "a lighthouse keeper", "our company's tenth anniversary", "learning to swim as an adult", "a rainy Monday"}

var codeTasks = []string{
	"parses an ISO 8601 date string", "removes duplicate emails from a list", "checks whether a string is a palindrome",
	"merges two sorted arrays", "retries an HTTP request with exponential backoff", "counts word frequencies in a text file",
	"validates a credit card number with the Luhn algorithm", "flattens a nested dictionary", "reads a CSV file and sums a column",
	"converts Roman numerals to integers", "rate-limits calls to a function", "finds the median of a stream of numbers",
}

var progLangs = []string{"Python", "Go", "TypeScript", "Rust", "Java", "SQL", "Kotlin", "C#", "Ruby", "Bash"}

var algorithms = []string{"binary search", "Dijkstra's shortest path algorithm", "an LRU cache", "quicksort", "a trie for autocomplete", "a token bucket rate limiter", "breadth-first search on a grid", "a min-heap", "the Levenshtein distance", "a consistent hashing ring"}

// planGoals pairs a kind of plan with what it is for.
var planGoals = [][2]string{
	{"a 4-week study plan", "learning SQL"}, {"a 6-week study plan", "understanding machine learning"},
	{"a weekly meal plan", "a vegetarian family of four"}, {"a weekly meal plan", "a marathon runner on a budget"},
	{"an onboarding checklist", "new support agents"}, {"an onboarding checklist", "a remote backend engineer"},
	{"a marketing calendar", "a product launch in March"}, {"a marketing calendar", "a local bakery's first year"},
	{"a workout routine", "a beginner runner"}, {"a workout routine", "someone who works at a desk all day"},
	{"a packing list", "a week of hiking in Patagonia"}, {"a packing list", "a business trip to Osaka in winter"},
	{"a sprint plan", "migrating our docs site"}, {"a reading list", "a new engineering manager"},
}

var docs = []string{"meeting notes", "customer complaint", "research abstract", "release notes", "incident report", "article", "support ticket thread"}

var systems = []string{
	"a URL shortener that handles 50k requests per second", "a notification service for a mobile banking app",
	"a real-time leaderboard for an online game", "a multi-tenant billing system", "a rate limiter shared by many API servers",
	"a search feature for an e-commerce catalog of 20M products", "a data pipeline that ingests IoT sensor readings",
	"a job queue that guarantees at-least-once delivery", "a feature store for an ML platform", "a chat system with read receipts",
}

var pairs = [][2]string{
	{"PostgreSQL", "MongoDB"}, {"Kafka", "RabbitMQ"}, {"microservices", "a modular monolith"}, {"REST", "gRPC"},
	{"LoRA", "full fine-tuning"}, {"server-side rendering", "a single-page app"}, {"Kubernetes", "plain VMs"},
	{"vector databases", "traditional full-text search"}, {"leasing", "buying company vehicles"}, {"renting", "buying a home"},
	{"a four-day work week", "flexible hours"}, {"index funds", "actively managed funds"}, {"Redis", "Memcached"},
	{"event sourcing", "CRUD tables"}, {"React", "Svelte"}, {"nuclear", "offshore wind power"},
}

var contexts = []string{
	"a startup with three engineers", "a RAG pipeline handling 10M documents", "a regulated healthcare company",
	"a team that deploys twenty times a day", "a mobile app with spotty connectivity", "a 70B parameter model",
	"a retailer with seasonal traffic spikes", "a city of 500,000 people", "a family with two young children",
	"a research lab with a tight budget", "an analytics workload with mostly reads",
}

var aspects = []string{"memory usage", "readability", "latency", "test coverage", "error handling", "throughput"}

var symptoms = []string{
	"returns the wrong total when the list is empty", "deadlocks under load", "leaks goroutines when the context is cancelled",
	"is off by one on the last page", "gets slower every hour until we restart it", "crashes on names with accents",
	"double-charges some customers", "passes locally but fails in CI",
}

var snippets = []string{
	"def total(xs): return sum(xs) / len(xs)",
	"for i := 0; i <= len(items); i++ { process(items[i]) }",
	"SELECT * FROM orders o JOIN customers c ON o.customer_id = c.id WHERE c.country = 'FR' ORDER BY o.created_at",
	"const page = items.slice(start, start + size + 1);",
	"while (!done) { lock.lock(); done = queue.isEmpty(); }",
	"go func() { for msg := range ch { handle(msg) } }()",
}

var mathClaims = []string{
	"the square root of 2 is irrational", "there are infinitely many primes", "the sum of the first n odd numbers is n squared",
	"every tree with n nodes has n-1 edges", "a graph is bipartite if and only if it has no odd cycle",
}

var tradeoffSubjects = []string{"caching API responses", "denormalising our reporting tables", "moving to serverless", "adding a second region", "raising the price of our basic plan", "switching to a monorepo", "hiring contractors instead of full-time staff"}

var systemPrompts = []string{
	"You are a helpful assistant.", "You are a concise assistant. Answer in at most three sentences.",
	"You are a senior software engineer reviewing code for a fintech company.", "You are a friendly tutor for high-school students.",
	"Answer in plain English and avoid jargon.", "You are a customer support agent for an online furniture store.",
	"You are a meticulous technical writer.", "Reply in Markdown with headings where useful.",
}

var sources = []string{"support-inbox", "eval-v3", "docs-qa", "marketing", "eng-wiki", "sales-notes"}

// Sentence pools for passages: each is a short paragraph's worth of context.
var passages = map[string][]string{
	"support": {
		"Hi, I ordered the oak dining table three weeks ago and the tracking page still says it is being prepared.",
		"Your website promised delivery within ten working days.",
		"I have called twice and was told someone would call me back, but nobody did.",
		"We have guests coming on the 14th and I need to know whether the table will arrive in time.",
		"If it cannot be delivered by then I would like a full refund instead.",
		"The order number is 48213 and it was paid by card.",
		"I also noticed that I was charged for express shipping, which I did not select.",
		"To be fair, your staff in the showroom were very helpful when I chose the table.",
	},
	"incident": {
		"At 02:14 UTC the checkout service began returning HTTP 500 errors for about 30% of requests.",
		"The on-call engineer was paged at 02:19 and acknowledged the alert within two minutes.",
		"Database CPU was at 98% and the connection pool was exhausted on every application node.",
		"A deploy at 01:55 had added a query without an index on the orders table.",
		"Rolling back the deploy at 02:41 brought error rates down to normal within five minutes.",
		"Roughly 1,800 customers saw a failed checkout, and 240 of them retried successfully.",
		"No data was lost, but some payments were authorised twice and had to be voided manually.",
		"The slow query had passed code review because the staging database only holds a few thousand rows.",
	},
	"research": {
		"We study how the size of a language model's training set affects its ability to follow instructions.",
		"Models from 1B to 13B parameters were trained on instruction datasets of 10k to 1M examples.",
		"Performance was measured on twelve held-out tasks covering reasoning, summarisation and code.",
		"Gains from more data were steep up to 100k examples and flattened afterwards.",
		"Smaller models benefited more from data quality than from data quantity.",
		"Filtering out the noisiest 20% of examples improved average scores by 3.1 points.",
		"We release our filtering heuristics and evaluation harness to support replication.",
	},
	"business": {
		"Our subscription revenue grew 18% last quarter, but churn rose from 3.2% to 4.5% per month.",
		"Most cancellations come from small teams in their second month.",
		"Exit surveys mention price and a confusing setup process most often.",
		"Enterprise customers, by contrast, renew at 96% and expand their seats over time.",
		"The sales team wants to discount annual plans, while product wants to invest in onboarding.",
		"We have budget for one major initiative next quarter.",
		"Our main competitor recently launched a free tier with limited features.",
	},
	"meeting": {
		"Attendees: Priya, Marco, Lena and Tom.",
		"Marco reported that the mobile release slipped by a week because of an App Store review issue.",
		"Lena proposed moving the design review to Thursdays so that the Berlin office can join.",
		"Tom raised concerns about on-call load; the team had 14 pages last week, mostly false alarms.",
		"Priya agreed to audit the alert rules and remove the noisy ones by Friday.",
		"The team decided to pause new feature work for one sprint to pay down test flakiness.",
		"Next meeting is on Tuesday at 10:00.",
	},
	"product": {
		"The Aurora desk lamp has a brushed aluminium arm and a weighted oak base.",
		"It offers five colour temperatures from warm 2700K to daylight 6500K.",
		"A touch dimmer on the base remembers your last setting.",
		"The lamp uses 9 watts and includes a USB-C port for charging a phone.",
		"It ships flat-packed and assembles in under five minutes without tools.",
		"A two-year warranty covers the LED module and the electronics.",
	},
}

var passageKinds = []string{"support", "incident", "research", "business", "meeting", "product"}

var foreign = []string{
	"¿Cuál es la capital de Perú?",
	"Quelle est la différence entre un crocodile et un alligator ?",
	"Wie viele Einwohner hat München?",
	"東京から大阪までの新幹線は何時間かかりますか？",
	"Qual è la ricetta tradizionale della carbonara?",
	"Почему небо голубое?",
	"Wat is het verschil tussen een eend en een gans?",
	"Ile kosztuje bilet do muzeum w Krakowie?",
}
